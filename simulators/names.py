"""Vocabularies for the synthetic county: people's names and place names.

Place-name pieces avoid characters that the hub's address normalisation
rewrites (Chinese numerals, 栋/幢/座/楼/号, 单元/室, 县/镇/乡/街道), so that two
different buildings can never normalise to the same text and the generator's
ground truth stays unambiguous. Every character is GBK-encodable because
names end up in GBK roster files.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from itertools import product

SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董程曹袁邓许傅沈曾彭吕"
    "苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江"
    "史顾侯邵孟龙段雷钱汤尹黎易常武乔贺赖龚文"
)
COMPOUND_SURNAMES = ("欧阳", "司马", "诸葛", "上官")
GIVEN_CHARS = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国文辉鹏斌宇浩凯俊欣怡"
    "梓涵子轩晨博雪琳婷倩颖佳思雨萱然宁昊天泽睿瑞嘉鑫晓春海林峰志立荣凤美金云飞龙成德"
    "福生兵庆波亮新利清梅莉燕慧丹"
)

UYGHUR_GIVEN = (
    "阿依古丽",
    "买买提",
    "艾力",
    "热依拉",
    "古丽米拉",
    "吐尔逊",
    "阿卜杜拉",
    "努尔",
    "迪丽拜尔",
    "帕提古丽",
    "艾克拜尔",
    "米热古丽",
)
UYGHUR_FATHER = ("买买提", "吐尔逊", "艾买提", "阿不都", "热合曼", "依明", "司马义", "玉素甫")
FOREIGN_GIVEN = (
    "约翰",
    "安娜",
    "玛丽亚",
    "大卫",
    "穆罕默德",
    "彼得",
    "索菲",
    "卡洛斯",
    "伊万",
    "艾米丽",
)
FOREIGN_FAMILY = (
    "史密斯",
    "伊万诺娃",
    "加西亚",
    "布朗",
    "阿里",
    "施密特",
    "马丁",
    "席尔瓦",
    "彼得罗夫",
    "威尔逊",
)
# ISO 3166 numeric codes of nationalities seen on permanent-residence cards.
NATIONALITIES = ("840", "643", "410", "392", "704", "276", "250", "076", "826", "586")

# Where floating residents' numbers were issued: (area code, household address prefix).
OTHER_AREAS = (
    ("341302", "安徽省宿州市埇桥区"),
    ("340102", "安徽省合肥市瑶海区"),
    ("410102", "河南省郑州市中原区"),
    ("371302", "山东省临沂市兰山区"),
    ("320826", "江苏省淮安市涟水县"),
    ("321323", "江苏省宿迁市泗阳县"),
    ("320722", "江苏省连云港市东海县"),
    ("320724", "江苏省连云港市灌南县"),
    ("320311", "江苏省徐州市泉山区"),
    ("130102", "河北省石家庄市长安区"),
)

TOWNS = (
    "伊山镇",
    "杨集镇",
    "燕尾港镇",
    "同兴镇",
    "圩丰镇",
    "龙苴镇",
    "下车镇",
    "图河镇",
    "东王集镇",
    "南岗乡",
    "小伊乡",
    "侍庄街道",
    "伊芦乡",
    "白蚬乡",
    "陡沟乡",
    "穆圩乡",
)
PLACE_PREFIXES = (
    "幸福",
    "人民",
    "新华",
    "城东",
    "城西",
    "城南",
    "城北",
    "东园",
    "西苑",
    "南湖",
    "北关",
    "民主",
    "胜利",
    "和平",
    "团结",
    "光明",
    "朝阳",
    "振兴",
    "育才",
    "富民",
    "安居",
    "兴隆",
    "长安",
    "永安",
    "太平",
    "双龙",
    "建设",
    "解放",
    "文化",
    "健康",
    "友谊",
    "东风",
    "长江",
    "黄河",
    "淮海",
    "中山",
    "金桂",
    "银杏",
    "翠竹",
    "阳光",
    "锦绣",
    "御景",
    "碧水",
    "春江",
    "丽景",
    "紫荆",
    "香榭",
    "枫林",
    "梧桐",
    "玉兰",
    "海棠",
    "蓝湾",
    "金色",
    "凤凰",
    "龙湖",
    "盛世",
    "星河",
    "学府",
    "馨园",
    "桃源",
    "荷塘",
    "柳岸",
    "松鹤",
    "怡和",
    "天润",
    "瑞祥",
    "祥和",
    "康乐",
    "新港",
    "滨河",
    "湖畔",
    "花溪",
    "青枫",
    "明珠",
    "书香",
    "景福",
    "永和",
    "宏远",
    "嘉禾",
    "润泽",
)
ROAD_SUFFIXES = ("路", "街", "大道", "中路", "东路", "西路", "南路", "北路")
ESTATE_SUFFIXES = ("家园", "花园", "小区", "新村", "苑", "公寓", "华庭", "名居", "雅苑", "嘉园")
VILLAGE_NAMES = (
    "东陈",
    "王庄",
    "李集",
    "大兴",
    "张湾",
    "后河",
    "新庄",
    "刘圩",
    "孙荡",
    "周口",
    "徐圩",
    "高庄",
)


def person_name(rng: random.Random, surname: str | None = None) -> str:
    """A Han name: surname plus one or two given-name characters."""
    if surname is None:
        surname = rng.choice(COMPOUND_SURNAMES) if rng.random() < 0.01 else rng.choice(SURNAMES)
    given = rng.choice(GIVEN_CHARS)
    return surname + (given if rng.random() < 0.3 else given + rng.choice(GIVEN_CHARS))


def minority_name(rng: random.Random) -> str:
    """A Uyghur name in Chinese transliteration, parts joined by ``·``."""
    return f"{rng.choice(UYGHUR_GIVEN)}·{rng.choice(UYGHUR_FATHER)}"


def foreign_name(rng: random.Random) -> str:
    """A foreigner's transliterated name, parts joined by ``·``."""
    return f"{rng.choice(FOREIGN_GIVEN)}·{rng.choice(FOREIGN_FAMILY)}"


def surname_of(name: str) -> str:
    """The surname of a Han name (compound surnames included)."""
    return name[:2] if name[:2] in COMPOUND_SURNAMES else name[0]


def unique_names(
    rng: random.Random, prefixes: Sequence[str], suffixes: Sequence[str], count: int
) -> list[str]:
    """``count`` distinct names made of a prefix and a suffix, in random order.

    When the single-prefix combinations run out, two prefixes are joined
    (``金桂阳光家园``), which keeps every name distinct for any county size.
    """
    singles = [a + b for a, b in product(prefixes, suffixes)]
    rng.shuffle(singles)
    if count <= len(singles):
        return singles[:count]
    names = singles
    seen = set(names)
    while len(names) < count:
        candidate = rng.choice(prefixes) + rng.choice(prefixes) + rng.choice(suffixes)
        if candidate not in seen:
            seen.add(candidate)
            names.append(candidate)
    return names
