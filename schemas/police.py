"""Rows of the public-security population system (公安人口信息系统).

Column names are the database's own (``rkbh``, ``gmsfhm`` ...). Types follow
what PyMySQL returns: ``DATETIME`` as a naive ``datetime`` in China local time,
``DECIMAL`` as an exact ``Decimal``, ``NULL`` as ``None``. Lengths are the
columns' declared ``VARCHAR``/``CHAR`` sizes. ID numbers, phones and dates are
kept as stored (15-digit IDs, lower-case ``x``, landlines); judging them is the
normaliser's job.
"""

from typing import Annotated, Literal

from pydantic import Field

from .common import Coordinate, LocalDatetime, SourceModel

TJqlb = Literal["01", "02", "03", "04", "05", "06", "99"]
TJqzt = Literal["已受理", "已处警", "已结案"]


class SyrkRow(SourceModel):
    """A row of ``syrk`` (实有人口, actual resident population)."""

    rkbh: Annotated[str, Field(max_length=20, description="人口编号, stable system key")]
    gmsfhm: Annotated[
        str,
        Field(
            max_length=18,
            description="公民身份号码 as stored: 18 chars, or 15 digits before 1999; "
            "lower-case x occurs",
        ),
    ]
    xm: Annotated[str, Field(max_length=50, description="姓名")]
    xb: Annotated[Literal["1", "2", "9"], Field(description="性别: 1 male, 2 female, 9 unknown")]
    csrq: Annotated[str, Field(max_length=8, description="出生日期 YYYYMMDD, as stored")]
    lxdh: Annotated[
        str | None,
        Field(max_length=30, description="联系电话: mobile or landline (0518-88123456)"),
    ] = None
    hjdz: Annotated[
        str | None,
        Field(max_length=200, description="户籍地址, household-registration address"),
    ] = None
    jzdz: Annotated[
        str, Field(max_length=200, description="居住地址, where the person actually lives")
    ]
    dzbm: Annotated[
        str | None,
        Field(
            max_length=32, description="地址编码: standard-address id, when the clerk picked one"
        ),
    ] = None
    rylb: Annotated[
        Literal["01", "02", "03"],
        Field(
            description="人员类别: 01 户籍人口 registered, 02 流动人口 floating, "
            "03 境外人员 foreign"
        ),
    ]
    zrq: Annotated[
        str, Field(max_length=20, description="警务责任区 police responsibility zone code")
    ]
    zxbz: Annotated[Literal["0", "1"], Field(description="注销标志: 0 active, 1 deregistered")]
    gxsj: Annotated[
        LocalDatetime, Field(description="更新时间, China local time, second precision")
    ]


class JqRow(SourceModel):
    """A row of ``jq`` (警情, police incidents)."""

    jqbh: Annotated[str, Field(max_length=30, description="警情编号, stable system key")]
    bjsj: Annotated[
        LocalDatetime, Field(description="报警时间, when it was reported, China local time")
    ]
    jqlb: Annotated[
        TJqlb,
        Field(
            description="警情类别 code: 01 刑事, 02 治安, 03 交通, 04 纠纷, 05 求助, "
            "06 火灾, 99 其他"
        ),
    ]
    jqlbmc: Annotated[str, Field(max_length=20, description="警情类别名称, category name")]
    fadz: Annotated[str, Field(max_length=200, description="发案地址, free text")]
    zrq: Annotated[str, Field(max_length=20, description="警务责任区 police zone code")]
    jd: Annotated[
        Coordinate | None, Field(description="经度, WGS-84 longitude, DECIMAL(10,6), when known")
    ] = None
    wd: Annotated[
        Coordinate | None, Field(description="纬度, WGS-84 latitude, DECIMAL(10,6), when known")
    ] = None
    bjrxm: Annotated[str | None, Field(max_length=50, description="报警人姓名, reporter name")] = (
        None
    )
    bjrdh: Annotated[str | None, Field(max_length=30, description="报警人电话, reporter phone")] = (
        None
    )
    bjrsfzh: Annotated[
        str | None,
        Field(max_length=18, description="报警人公民身份号码, rarely filled"),
    ] = None
    jqzt: Annotated[TJqzt, Field(description="警情状态: 已受理, 已处警, 已结案")]
    gxsj: Annotated[
        LocalDatetime, Field(description="更新时间, China local time, second precision")
    ]
