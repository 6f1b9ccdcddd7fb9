"""Records of the party-building REST API (党建信息系统).

Field names are the API's camelCase JSON names. Timestamps arrive as ISO-8601
text with an offset and are parsed to aware datetimes; dates arrive as
``YYYY-MM-DD``. Both models also accept already-parsed values, which is what
an Avro decode hands back.
"""

from typing import Annotated, Literal

from pydantic import Field

from .common import IsoAwareDatetime, IsoDate, SourceModel

TMemberType = Literal["正式党员", "预备党员"]
TMemberStatus = Literal["在册", "转出", "停止党籍", "死亡"]
TActivityKind = Literal["志愿服务", "双报到服务", "组织生活"]


class PartyMember(SourceModel):
    """A party member (党员) from ``GET /api/v2/members``."""

    memberId: Annotated[str, Field(description="党员编号, stable system key, e.g. M0012345")]
    idCard: Annotated[
        str,
        Field(description="公民身份号码 as typed; may carry surrounding spaces or a lower-case x"),
    ]
    name: Annotated[
        str, Field(description="姓名; may contain full-width spaces or a middle dot (·)")
    ]
    gender: Annotated[Literal["男", "女"], Field(description="性别: 男 or 女")]
    birthDate: Annotated[IsoDate, Field(description="出生日期")]
    mobile: Annotated[
        str,
        Field(
            description="手机号 as typed: 13912345678, 139 1234 5678, +86-139-1234-5678 or empty"
        ),
    ]
    branchCode: Annotated[str, Field(description="党支部代码, party branch code")]
    branchName: Annotated[str, Field(description="党支部名称, party branch name")]
    partyGridCode: Annotated[str, Field(description="党建网格 code, e.g. DJ-320723100001-02")]
    memberType: Annotated[TMemberType, Field(description="党员类型: 正式党员 or 预备党员")]
    joinDate: Annotated[IsoDate, Field(description="入党日期")]
    status: Annotated[
        TMemberStatus,
        Field(description="党籍状态: 在册 active, 转出 transferred out, 停止党籍, 死亡 deceased"),
    ]
    reportCommunityCode: Annotated[
        str | None,
        Field(description="双报到社区: 12-digit community where the member registered to serve"),
    ] = None
    residenceAddress: Annotated[str, Field(description="居住地址, free text typed by a clerk")]
    updatedAt: Annotated[
        IsoAwareDatetime, Field(description="更新时间, ISO-8601 with offset (+08:00)")
    ]


class PartyActivity(SourceModel):
    """A party activity (党员活动) from ``GET /api/v2/activities``.

    A voided activity keeps its kind and reports ``hours: 0``.
    """

    activityId: Annotated[str, Field(description="活动编号, stable system key")]
    memberId: Annotated[str, Field(description="党员编号 of the member who served")]
    kind: Annotated[TActivityKind, Field(description="活动类型: 志愿服务, 双报到服务, 组织生活")]
    hours: Annotated[
        float,
        Field(ge=0, multiple_of=0.5, description="服务时长 in hours, 0.5 steps; 0 when voided"),
    ]
    partyGridCode: Annotated[str, Field(description="党建网格 code where it took place")]
    occurredAt: Annotated[IsoAwareDatetime, Field(description="活动时间, ISO-8601 with offset")]
    updatedAt: Annotated[IsoAwareDatetime, Field(description="更新时间, ISO-8601 with offset")]
