"""Records of the civil-affairs system (民政救助与福利系统).

``JzdxRow`` mirrors table ``public.jzdx`` with the database's column names and
the types psycopg returns (``NUMERIC`` as ``Decimal``, ``TIMESTAMPTZ`` as an
aware datetime with microseconds).

Roster rows carry English snake_case names; each field's description starts
with the Chinese header it is read from:

高龄津贴 CSV (``ElderlyAllowanceRow``)::

    序号 seq, 姓名 name, 身份证号码 id_number, 性别 gender, 年龄 age,
    所属社区 community_name, 社区代码 community_code, 发放金额 amount,
    联系电话 phone, 备注 remark

残疾人两项补贴 XLSX (``DisabilitySubsidyRow``)::

    序号 seq, 姓名 name, 身份证号 id_number, 残疾类别 disability_category,
    残疾等级 disability_level, 社区代码 community_code, 住址 address,
    补贴金额 amount

Both also carry where they were read from: ``file_name``, ``month``
(``YYYYMM`` from the file name), ``file_time`` and ``file_sha256``. A roster's numbers may be
text (CSV) or spreadsheet numbers (XLSX), so ``seq``, ``age`` and ``amount``
parse either. An empty optional cell is ``None``. The ID number is kept as
read, even when a spreadsheet mangled it to ``3.20723E+17``.
"""

from typing import Annotated, Literal

from pydantic import Field

from .common import (
    IsoAwareDatetime,
    IsoDate,
    Money,
    MoneyText,
    NonNegativeLong,
    SourceModel,
)

TJzlx = Literal["低保", "特困", "临时救助"]
TDisabilityCategory = Literal["视力", "听力", "言语", "肢体", "智力", "精神", "多重"]
TDisabilityLevel = Literal["一级", "二级", "三级", "四级"]

_MONTH_PATTERN = r"^[0-9]{4}(0[1-9]|1[0-2])$"
RosterCount = Annotated[int, Field(strict=False, ge=0, le=2**31 - 1)]
FileDigest = Annotated[
    str | None,
    Field(
        pattern=r"^[0-9a-f]{64}$",
        description="SHA-256 of the file's bytes: which version of a re-dropped month",
    ),
]
"""Tells the versions of a roster month dropped again under the same name apart."""
"""A whole number from a roster cell: CSV text or a spreadsheet number."""


class JzdxRow(SourceModel):
    """A row of ``public.jzdx`` (救助对象, assistance recipients)."""

    id: Annotated[NonNegativeLong, Field(description="system key (BIGSERIAL)")]
    sfzh: Annotated[str, Field(max_length=18, description="公民身份号码 of the recipient")]
    xm: Annotated[str, Field(max_length=50, description="姓名")]
    jzlx: Annotated[TJzlx, Field(description="救助类型: 低保, 特困, 临时救助")]
    jtrk: Annotated[int, Field(ge=0, le=2**31 - 1, description="家庭人口, family size")]
    bzje: Annotated[Money, Field(description="保障金额, monthly amount in yuan, NUMERIC(10,2)")]
    ksrq: Annotated[IsoDate, Field(description="开始日期, start date")]
    jsrq: Annotated[
        IsoDate | None,
        Field(description="结束日期; when set and not after today, the assistance has ended"),
    ] = None
    sqdm: Annotated[str, Field(max_length=12, description="社区代码, community code CHAR(12)")]
    jtzz: Annotated[str, Field(max_length=200, description="家庭住址, free text")]
    lxdh: Annotated[str | None, Field(max_length=30, description="联系电话")] = None
    hzsfzh: Annotated[
        str | None, Field(max_length=18, description="户主公民身份号码, household head")
    ] = None
    deleted: Annotated[bool, Field(description="soft delete: the record was entered in error")]
    updated_at: Annotated[
        IsoAwareDatetime,
        Field(description="更新时间, set by a trigger on every write, microseconds"),
    ]


class ElderlyAllowanceRow(SourceModel):
    """A row of a ``高龄津贴_YYYYMM.csv`` roster (old-age allowance)."""

    file_name: Annotated[
        str, Field(min_length=1, description="roster file name, e.g. 高龄津贴_202610.csv")
    ]
    month: Annotated[
        str, Field(pattern=_MONTH_PATTERN, description="发放月份 YYYYMM, from the file name")
    ]
    file_time: Annotated[
        IsoAwareDatetime | None,
        Field(description="when this version of the file was completed (its .ok marker's mtime)"),
    ] = None
    file_sha256: FileDigest = None
    seq: Annotated[RosterCount, Field(description="序号")]
    name: Annotated[str, Field(description="姓名")]
    id_number: Annotated[
        str, Field(description="身份证号码 as read; may be spreadsheet-mangled (3.20723E+17)")
    ]
    gender: Annotated[str, Field(description="性别, as written in the roster")]
    age: Annotated[RosterCount, Field(description="年龄")]
    community_name: Annotated[str, Field(description="所属社区")]
    community_code: Annotated[str, Field(description="社区代码")]
    amount: Annotated[MoneyText, Field(description="发放金额, yuan")]
    phone: Annotated[str | None, Field(description="联系电话")] = None
    remark: Annotated[str | None, Field(description="备注")] = None


class DisabilitySubsidyRow(SourceModel):
    """A row of a ``残疾人两项补贴_YYYYMM.xlsx`` roster (disability subsidies)."""

    file_name: Annotated[
        str, Field(min_length=1, description="roster file name, e.g. 残疾人两项补贴_202610.xlsx")
    ]
    month: Annotated[
        str, Field(pattern=_MONTH_PATTERN, description="发放月份 YYYYMM, from the file name")
    ]
    file_time: Annotated[
        IsoAwareDatetime | None,
        Field(description="when this version of the file was completed (its .ok marker's mtime)"),
    ] = None
    file_sha256: FileDigest = None
    seq: Annotated[RosterCount, Field(description="序号")]
    name: Annotated[str, Field(description="姓名")]
    id_number: Annotated[str, Field(description="身份证号, stored as text")]
    disability_category: Annotated[
        TDisabilityCategory, Field(description="残疾类别: 视力, 听力, 言语, 肢体, 智力, 精神, 多重")
    ]
    disability_level: Annotated[TDisabilityLevel, Field(description="残疾等级: 一级..四级")]
    community_code: Annotated[str, Field(description="社区代码")]
    address: Annotated[str, Field(description="住址")]
    amount: Annotated[MoneyText, Field(description="补贴金额, yuan")]


TAllowance = Literal["高龄津贴", "残疾人补贴"]


class RosterEdition(SourceModel):
    """A roster file read completely: the version of its month that replaces the ones before.

    The roster connector sends one after the rows of each complete file. A
    resident receives a roster's allowance when listed in the newest edition of
    that roster kind (the newest month; within a month, the newest drop), so
    a person missing from a corrected roster loses it (civil-affairs.md).
    """

    allowance: Annotated[TAllowance, Field(description="roster kind: 高龄津贴 or 残疾人补贴")]
    file_name: Annotated[str, Field(min_length=1, description="roster file name")]
    month: Annotated[str, Field(pattern=_MONTH_PATTERN, description="发放月份 YYYYMM")]
    file_time: Annotated[
        IsoAwareDatetime, Field(description="when the file was completed (its .ok marker's mtime)")
    ]
    file_sha256: Annotated[
        str, Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the file's bytes")
    ]
    rows: Annotated[RosterCount, Field(description="data rows read (total line excluded)")]
    rejected: Annotated[
        RosterCount, Field(description="rows sent to dead letters (their reason is there)")
    ]
