"""Tickets of the 12345 hotline API (12345 政务服务便民热线 工单系统).

Field names are the API's camelCase JSON names. Times stay the integers the API
sends (Unix epoch milliseconds): they are the API's own paging unit, and
keeping them avoids a lossy round trip. Coordinates are JSON numbers, read as
floats.
"""

from typing import Annotated, Literal

from pydantic import Field

from .common import EpochMillis, SourceModel

TTicketStatus = Literal["受理", "派单", "处置中", "办结", "回访", "退单"]
TSatisfaction = Literal["满意", "基本满意", "不满意"]

OPEN_STATUSES: frozenset[str] = frozenset({"受理", "派单", "处置中", "退单"})
"""A ticket is open while its status is not 办结 or 回访."""


class HotlineTicket(SourceModel):
    """A ticket (工单) from ``GET /open/api/v1/tickets``."""

    ticketNo: Annotated[str, Field(description="工单编号, stable key, e.g. 12345-20261022-000123")]
    createTime: Annotated[EpochMillis, Field(description="创建时间, epoch ms")]
    updateTime: Annotated[EpochMillis, Field(description="更新时间, epoch ms")]
    callerName: Annotated[
        str, Field(description="来电人: a name such as 王先生, or 匿名 (never link by phone)")
    ]
    callerPhone: Annotated[
        str,
        Field(description="来电号码, often masked (139****5678): masked numbers identify no one"),
    ]
    callerIdCard: Annotated[str | None, Field(description="来电人身份证号, rarely filled")] = None
    address: Annotated[str, Field(description="地址, free text from the caller")]
    lng: Annotated[float | None, Field(description="经度, WGS-84, when from the app")] = None
    lat: Annotated[float | None, Field(description="纬度, WGS-84, when from the app")] = None
    category: Annotated[str, Field(description="诉求大类, e.g. 城乡建设")]
    subcategory: Annotated[str, Field(description="诉求小类, e.g. 物业管理")]
    content: Annotated[str, Field(description="诉求内容, the complaint or request")]
    status: Annotated[
        TTicketStatus, Field(description="工单状态: 受理, 派单, 处置中, 办结, 回访, 退单")
    ]
    handleDept: Annotated[str | None, Field(description="承办部门")] = None
    deadline: Annotated[EpochMillis | None, Field(description="办理时限, epoch ms")] = None
    finishTime: Annotated[EpochMillis | None, Field(description="办结时间, epoch ms")] = None
    satisfaction: Annotated[
        TSatisfaction | None, Field(description="满意度: 满意, 基本满意, 不满意")
    ] = None
    urgent: Annotated[int, Field(ge=0, le=1, description="是否紧急: 0 or 1")]

    @property
    def is_open(self) -> bool:
        """Whether the ticket still counts as open (status not 办结/回访)."""
        return self.status in OPEN_STATUSES
