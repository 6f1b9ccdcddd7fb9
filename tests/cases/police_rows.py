"""Source rows as the databases return them (police, civil), shared by the stage tests.

Each test module derives what it needs with ``{**SYRK_ROW, "field": value}``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

SYRK_ROW: dict[str, Any] = {
    "rkbh": "R320723000001",
    "gmsfhm": "32072319650101123x",
    "xm": " 王　芳 ",
    "xb": "9",
    "csrq": "19650101",
    "lxdh": "+86 139-1234-5678",
    "hjdz": None,
    "jzdz": " 灌云县伊山镇幸福路18号幸福家园3栋 ",
    "dzbm": "A001",
    "rylb": "02",
    "zrq": "320723510000-03",
    "zxbz": "1",
    "gxsj": datetime(2026, 10, 22, 9, 30, 5),
}
JQ_ROW: dict[str, Any] = {
    "jqbh": "J3207232026102200001",
    "bjsj": datetime(2026, 10, 22, 21, 5, 0),
    "jqlb": "04",
    "jqlbmc": "纠纷",
    "fadz": "幸福路18号附近",
    "zrq": "320723510000-03",
    "jd": Decimal("119.239812"),
    "wd": Decimal("34.283561"),
    "bjrxm": "李先生",
    "bjrdh": "139****5678",
    "bjrsfzh": None,
    "jqzt": "已处警",
    "gxsj": datetime(2026, 10, 22, 21, 40, 0),
}
JZDX_ROW: dict[str, Any] = {
    "id": 41,
    "sfzh": "32072319650101123X",
    "xm": "王芳",
    "jzlx": "低保",
    "jtrk": 3,
    "bzje": Decimal("650.00"),
    "ksrq": date(2025, 1, 1),
    "jsrq": None,
    "sqdm": "320723100001",
    "jtzz": "灌云县伊山镇幸福路18号幸福家园3栋2单元302室",
    "lxdh": "13800001111",
    "hzsfzh": None,
    "deleted": False,
    "updated_at": datetime(2026, 10, 23, 2, 0, 0, 123456, tzinfo=UTC),
}
MEMBER: dict[str, Any] = {
    "memberId": "M0012345",
    "idCard": " 32072319650101123x ",
    "name": "王　芳",
    "gender": "女",
    "birthDate": date(1965, 1, 1),
    "mobile": "+86-139-1234-0000",
    "branchCode": "DZB-001",
    "branchName": "幸福社区第一党支部",
    "partyGridCode": "DJ-320723100001-02",
    "memberType": "正式党员",
    "joinDate": date(1990, 7, 1),
    "status": "在册",
    "reportCommunityCode": "320723100002",
    "residenceAddress": "幸福路18号",
    "updatedAt": datetime(2026, 10, 24, 1, 0, 0, tzinfo=UTC),
}
TICKET: dict[str, Any] = {
    "ticketNo": "12345-20261022-000123",
    "createTime": 1_761_100_000_000,
    "updateTime": 1_761_190_000_000,
    "callerName": "王女士",
    "callerPhone": "139****5678",
    "callerIdCard": "32072319650101123x",
    "address": "幸福路18号附近",
    "lng": None,
    "lat": None,
    "category": "城乡建设",
    "subcategory": "物业管理",
    "content": "楼道灯坏了",
    "status": "处置中",
    "handleDept": "伊山镇",
    "deadline": None,
    "finishTime": None,
    "satisfaction": None,
    "urgent": 0,
}
