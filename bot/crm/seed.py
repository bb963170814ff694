"""Demo data for the embedded CRM, so that every answer can be tried on a fresh install.

The identifiers are a contract that tests and evaluation sets rely on (see ARCHITECTURE.md, "Demo
data"): customers C202405001 … C202405020, orders DD202405001 … DD202405030, order DD2024050NN for
NN ≤ 20 belongs to customer C2024050NN, C202405003 and C202405010 are VIP, C202405001 and
C202405002 are not, DD202405001 is shipped by SF with a tracking number.

Everything is a fixed value (no clock), described as of `DEMO_AS_OF`: shipped orders expect
delivery after that day, delayed ones were expected before it. Names, emails (example.com /
example.net only), phone numbers and addresses are invented.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import NamedTuple

from bot.crm.records import SHOP_TZ, OrderStatus, RefundStatus

# The day the demo data describes: ETAs after it are still to come, ETAs before it are missed.
DEMO_AS_OF = date(2024, 5, 20)


def _at(text: str) -> datetime:
    """A shop-local timestamp, "2024-05-16 10:12"."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=SHOP_TZ)


def _day(text: str) -> date:
    return date.fromisoformat(text)


class SeedProduct(NamedTuple):
    """A demo product."""

    sku: str
    name_zh_cn: str
    name_zh_tw: str
    name_en: str
    warranty_months: int
    price: Decimal


class SeedCustomer(NamedTuple):
    """A demo customer; `vip_level` 0 means not VIP."""

    id: str
    surname: str
    surname_en: str
    given_name: str
    title: str
    email: str
    phone: str
    locale: str
    vip_level: int = 0


class SeedOrder(NamedTuple):
    """A demo order; the amount is the product price times the quantity, so is any refund."""

    id: str
    customer_id: str
    status: OrderStatus
    sku: str
    quantity: int
    city: str
    address: str
    ordered_at: datetime
    paid_at: datetime | None = None
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None
    carrier: str | None = None
    tracking_number: str | None = None
    eta: date | None = None
    refund_status: RefundStatus | None = None
    refunded_at: datetime | None = None
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None


# fmt: off
# Warranties differ on purpose, so that "still under warranty?" has both answers for a while after
# the spring 2024 purchases: 12 months ran out in 2025, 24 run out in spring 2026, 36 in spring 2027.
SEED_PRODUCTS: tuple[SeedProduct, ...] = (
    SeedProduct("EARBUDS-X1", "无线蓝牙耳机 X1", "無線藍牙耳機 X1", "Wireless Earbuds X1", 12, Decimal("399.00")),
    SeedProduct("WATCH-S3", "智能手表 S3", "智慧手錶 S3", "Smart Watch S3", 24, Decimal("1299.00")),
    SeedProduct("VACUUM-R7", "扫地机器人 R7", "掃地機器人 R7", "Robot Vacuum R7", 36, Decimal("2499.00")),
    SeedProduct("POWERBANK-20K", "20000mAh 充电宝", "20000mAh 行動電源", "20000mAh Power Bank", 12, Decimal("159.00")),
    SeedProduct("PURIFIER-A5", "空气净化器 A5", "空氣清淨機 A5", "Air Purifier A5", 36, Decimal("1899.00")),
    SeedProduct("KEYBOARD-K2", "机械键盘 K2", "機械鍵盤 K2", "Mechanical Keyboard K2", 12, Decimal("499.00")),
)

# Surnames are written as the customer writes them (Traditional for zh-TW customers);
# CustomerInfo.masked_name() converts them to the script of the reply.
SEED_CUSTOMERS: tuple[SeedCustomer, ...] = (
    SeedCustomer("C202405001", "王", "Wang", "伟", "先生", "wang.wei@example.com", "13800138001", "zh-CN"),
    SeedCustomer("C202405002", "李", "Li", "娜", "女士", "li.na@example.com", "13800138002", "zh-CN"),
    SeedCustomer("C202405003", "张", "Zhang", "敏", "女士", "zhang.min@example.com", "13800138003", "zh-CN", 2),
    SeedCustomer("C202405004", "刘", "Liu", "洋", "先生", "liu.yang@example.net", "13800138004", "zh-CN"),
    SeedCustomer("C202405005", "陈", "Chen", "静", "女士", "chen.jing@example.com", "13800138005", "zh-CN"),
    SeedCustomer("C202405006", "林", "Lin", "志明", "先生", "lin.zhiming@example.net", "13800138006", "zh-TW"),
    SeedCustomer("C202405007", "杨", "Yang", "磊", "先生", "yang.lei@example.com", "13800138007", "zh-CN"),
    SeedCustomer("C202405008", "黄", "Huang", "丽", "女士", "huang.li@example.com", "13800138008", "en"),
    SeedCustomer("C202405009", "赵", "Zhao", "强", "先生", "zhao.qiang@example.net", "13800138009", "zh-CN"),
    SeedCustomer("C202405010", "周", "Zhou", "婷", "女士", "zhou.ting@example.com", "13800138010", "zh-CN", 3),
    SeedCustomer("C202405011", "吴", "Wu", "军", "先生", "wu.jun@example.com", "13800138011", "zh-CN"),
    SeedCustomer("C202405012", "徐", "Xu", "燕", "女士", "xu.yan@example.net", "13800138012", "zh-CN"),
    SeedCustomer("C202405013", "孙", "Sun", "浩", "先生", "sun.hao@example.com", "13800138013", "zh-CN"),
    SeedCustomer("C202405014", "張", "Zhang", "雅婷", "女士", "zhang.yating@example.net", "13800138014", "zh-TW"),
    SeedCustomer("C202405015", "马", "Ma", "超", "先生", "ma.chao@example.com", "13800138015", "zh-CN"),
    SeedCustomer("C202405016", "朱", "Zhu", "红", "女士", "zhu.hong@example.com", "13800138016", "en"),
    SeedCustomer("C202405017", "胡", "Hu", "斌", "先生", "hu.bin@example.net", "13800138017", "zh-CN"),
    SeedCustomer("C202405018", "郭", "Guo", "秀英", "女士", "guo.xiuying@example.com", "13800138018", "zh-CN"),
    SeedCustomer("C202405019", "陳", "Chen", "冠宇", "先生", "chen.guanyu@example.net", "13800138019", "zh-TW"),
    SeedCustomer("C202405020", "何", "He", "杰", "先生", "he.jie@example.com", "13800138020", "en"),
)

_S = OrderStatus
_PROCESSING, _COMPLETED = RefundStatus.PROCESSING, RefundStatus.COMPLETED

SEED_ORDERS: tuple[SeedOrder, ...] = (
    SeedOrder("DD202405001", "C202405001", _S.SHIPPED, "EARBUDS-X1", 1, "上海市", "上海市浦东新区张杨路 500 号 12 楼",
              _at("2024-05-16 10:12"), _at("2024-05-16 10:13"), _at("2024-05-17 15:40"), None,
              "SF", "SF1234567890123", _day("2024-05-21")),
    SeedOrder("DD202405002", "C202405002", _S.SHIPPED, "WATCH-S3", 1, "北京市", "北京市朝阳区建国路 88 号 3 单元 601",
              _at("2024-05-15 21:03"), _at("2024-05-15 21:05"), _at("2024-05-17 09:20"), None,
              "YTO", "YT7512345678901", _day("2024-05-22")),
    SeedOrder("DD202405003", "C202405003", _S.DELAYED, "VACUUM-R7", 1, "杭州市", "杭州市西湖区文三路 90 号 2 幢 302",
              _at("2024-05-08 14:30"), _at("2024-05-08 14:31"), _at("2024-05-10 11:00"), None,
              "ZTO", "75312345678901", _day("2024-05-14")),
    SeedOrder("DD202405004", "C202405004", _S.DELIVERED, "POWERBANK-20K", 2, "广州市", "广州市天河区体育西路 123 号",
              _at("2024-05-02 09:45"), _at("2024-05-02 09:46"), _at("2024-05-03 08:10"), _at("2024-05-04 16:22"),
              "JD", "JDVA20240503001", _day("2024-05-05")),
    SeedOrder("DD202405005", "C202405005", _S.PAID, "PURIFIER-A5", 1, "成都市", "成都市武侯区人民南路四段 27 号",
              _at("2024-05-19 20:18"), _at("2024-05-19 20:19")),
    SeedOrder("DD202405006", "C202405006", _S.SHIPPED, "KEYBOARD-K2", 1, "台北市", "台北市信義區松仁路 100 號 8 樓",
              _at("2024-05-17 13:00"), _at("2024-05-17 13:02"), _at("2024-05-18 10:30"), None,
              "SF", "SF2234567890124", _day("2024-05-23")),
    SeedOrder("DD202405007", "C202405007", _S.RETURNED, "EARBUDS-X1", 1, "南京市", "南京市鼓楼区中山路 321 号",
              _at("2024-05-01 11:20"), _at("2024-05-01 11:21"), _at("2024-05-02 09:00"), _at("2024-05-03 17:45"),
              "SF", "SF3234567890125", _day("2024-05-04"), _PROCESSING),
    SeedOrder("DD202405008", "C202405008", _S.REFUNDED, "WATCH-S3", 1, "深圳市", "深圳市南山区科技园南路 18 号",
              _at("2024-04-28 19:40"), _at("2024-04-28 19:41"), _at("2024-04-29 10:00"), _at("2024-05-01 14:05"),
              "JD", "JDVA20240430002", _day("2024-05-01"), _COMPLETED, _at("2024-05-12 10:00")),
    SeedOrder("DD202405009", "C202405009", _S.CANCELLED, "VACUUM-R7", 1, "沈阳市", "沈阳市和平区南京北街 45 号",
              _at("2024-05-10 08:55"), _at("2024-05-10 08:56"),
              refund_status=_COMPLETED, refunded_at=_at("2024-05-11 15:00"),
              cancelled_at=_at("2024-05-10 09:30"), cancel_reason="重复下单"),
    SeedOrder("DD202405010", "C202405010", _S.DELIVERED, "PURIFIER-A5", 1, "武汉市", "武汉市洪山区珞喻路 66 号",
              _at("2024-05-03 10:05"), _at("2024-05-03 10:06"), _at("2024-05-04 09:30"), _at("2024-05-06 11:40"),
              "SF", "SF4234567890126", _day("2024-05-06")),
    SeedOrder("DD202405011", "C202405011", _S.REFUNDING, "KEYBOARD-K2", 1, "郑州市", "郑州市金水区花园路 56 号",
              _at("2024-05-12 16:10"), _at("2024-05-12 16:12"), _at("2024-05-13 10:00"), _at("2024-05-15 13:30"),
              "YTO", "YT7512345678902", _day("2024-05-15"), _PROCESSING),
    SeedOrder("DD202405012", "C202405012", _S.DELAYED, "POWERBANK-20K", 1, "西安市", "西安市雁塔区小寨东路 9 号",
              _at("2024-05-09 22:15"), _at("2024-05-09 22:16"), _at("2024-05-10 18:00"), None,
              "YTO", "YT7512345678903", _day("2024-05-13")),
    SeedOrder("DD202405013", "C202405013", _S.PAID, "WATCH-S3", 1, "重庆市", "重庆市渝中区民权路 28 号",
              _at("2024-05-20 09:12"), _at("2024-05-20 09:13")),
    SeedOrder("DD202405014", "C202405014", _S.DELIVERED, "EARBUDS-X1", 1, "台中市", "台中市西屯區台灣大道三段 99 號",
              _at("2024-05-05 15:00"), _at("2024-05-05 15:01"), _at("2024-05-06 10:00"), _at("2024-05-09 12:20"),
              "SF", "SF5234567890127", _day("2024-05-09")),
    SeedOrder("DD202405015", "C202405015", _S.SHIPPED, "VACUUM-R7", 1, "乌鲁木齐市", "乌鲁木齐市天山区解放北路 66 号",
              _at("2024-05-16 18:40"), _at("2024-05-16 18:41"), _at("2024-05-18 14:00"), None,
              "EMS", "1123456789012", _day("2024-05-24")),
    SeedOrder("DD202405016", "C202405016", _S.CANCELLED, "KEYBOARD-K2", 1, "青岛市", "青岛市市南区香港中路 10 号",
              _at("2024-05-18 23:05"),
              cancelled_at=_at("2024-05-19 23:05"), cancel_reason="超时未支付，系统自动取消"),
    SeedOrder("DD202405017", "C202405017", _S.DELIVERED, "KEYBOARD-K2", 1, "长沙市", "长沙市岳麓区麓山南路 2 号",
              _at("2024-04-25 10:30"), _at("2024-04-25 10:31"), _at("2024-04-26 09:00"), _at("2024-04-28 15:10"),
              "ZTO", "75312345678902", _day("2024-04-29")),
    SeedOrder("DD202405018", "C202405018", _S.DELIVERED, "WATCH-S3", 1, "苏州市", "苏州市工业园区星海街 200 号",
              _at("2024-05-06 12:00"), _at("2024-05-06 12:01"), _at("2024-05-07 08:00"), _at("2024-05-08 10:45"),
              "JD", "JDVA20240507003", _day("2024-05-08")),
    SeedOrder("DD202405019", "C202405019", _S.REFUNDED, "EARBUDS-X1", 1, "高雄市", "高雄市苓雅區四維三路 6 號",
              _at("2024-04-30 09:00"), _at("2024-04-30 09:02"), _at("2024-05-01 10:00"), _at("2024-05-04 11:00"),
              "SF", "SF6234567890128", _day("2024-05-04"), _COMPLETED, _at("2024-05-15 10:30")),
    SeedOrder("DD202405020", "C202405020", _S.PAID, "KEYBOARD-K2", 2, "天津市", "天津市和平区南京路 189 号",
              _at("2024-05-19 11:11"), _at("2024-05-19 11:12")),
    SeedOrder("DD202405021", "C202405001", _S.DELIVERED, "WATCH-S3", 1, "上海市", "上海市浦东新区张杨路 500 号 12 楼",
              _at("2024-04-20 20:00"), _at("2024-04-20 20:01"), _at("2024-04-21 09:00"), _at("2024-04-23 14:30"),
              "SF", "SF7234567890129", _day("2024-04-23")),
    SeedOrder("DD202405022", "C202405003", _S.DELIVERED, "PURIFIER-A5", 1,
              "杭州市", "杭州市西湖区文三路 90 号 2 幢 302",
              _at("2024-04-15 10:00"), _at("2024-04-15 10:02"), _at("2024-04-16 09:00"), _at("2024-04-17 16:00"),
              "JD", "JDVA20240416004", _day("2024-04-17")),
    SeedOrder("DD202405023", "C202405005", _S.CANCELLED, "POWERBANK-20K", 1, "成都市", "成都市武侯区人民南路四段 27 号",
              _at("2024-05-14 10:20"), _at("2024-05-14 10:21"),
              refund_status=_COMPLETED, refunded_at=_at("2024-05-14 12:05"),
              cancelled_at=_at("2024-05-14 12:00"), cancel_reason="客户要求取消：不想要了"),
    SeedOrder("DD202405024", "C202405007", _S.SHIPPED, "POWERBANK-20K", 1, "南京市", "南京市鼓楼区中山路 321 号",
              _at("2024-05-18 09:30"), _at("2024-05-18 09:31"), _at("2024-05-19 10:00"), None,
              "ZTO", "75312345678903", _day("2024-05-22")),
    SeedOrder("DD202405025", "C202405010", _S.PAID, "VACUUM-R7", 1, "武汉市", "武汉市洪山区珞喻路 66 号",
              _at("2024-05-20 08:00"), _at("2024-05-20 08:01")),
    SeedOrder("DD202405026", "C202405002", _S.DELIVERED, "KEYBOARD-K2", 1,
              "北京市", "北京市朝阳区建国路 88 号 3 单元 601",
              _at("2024-05-01 13:00"), _at("2024-05-01 13:01"), _at("2024-05-02 10:00"), _at("2024-05-04 15:20"),
              "YTO", "YT7512345678904", _day("2024-05-05")),
    SeedOrder("DD202405027", "C202405012", _S.DELAYED, "EARBUDS-X1", 1, "西安市", "西安市雁塔区小寨东路 9 号",
              _at("2024-05-07 20:45"), _at("2024-05-07 20:46"), _at("2024-05-08 09:00"), None,
              "SF", "SF8234567890130", _day("2024-05-11")),
    SeedOrder("DD202405028", "C202405015", _S.RETURNED, "WATCH-S3", 1, "乌鲁木齐市", "乌鲁木齐市天山区解放北路 66 号",
              _at("2024-05-02 12:30"), _at("2024-05-02 12:31"), _at("2024-05-03 10:00"), _at("2024-05-08 17:00"),
              "EMS", "1123456789013", _day("2024-05-08"), _PROCESSING),
    SeedOrder("DD202405029", "C202405004", _S.REFUNDING, "EARBUDS-X1", 1, "广州市", "广州市天河区体育西路 123 号",
              _at("2024-05-10 19:00"), _at("2024-05-10 19:01"), _at("2024-05-11 09:00"), _at("2024-05-12 14:00"),
              "JD", "JDVA20240511005", _day("2024-05-12"), _PROCESSING),
    SeedOrder("DD202405030", "C202405018", _S.SHIPPED, "PURIFIER-A5", 1, "苏州市", "苏州市工业园区星海街 200 号",
              _at("2024-05-18 16:00"), _at("2024-05-18 16:01"), _at("2024-05-19 11:00"), None,
              "YTO", "YT7512345678905", _day("2024-05-21")),
)
# fmt: on
