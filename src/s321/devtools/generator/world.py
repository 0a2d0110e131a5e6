"""The synthetic world the traffic is drawn from: goods, carriers, marketplaces, brokers, places.

Every company, person, brand and street here is invented. Cities, countries, CBP port codes
and HTS numbers are real, so that the data reads like the real thing. Websites use the
reserved ``.example`` domain.

The clean catalogue (:data:`CATALOGUE`) holds goods that trigger no rule: their HTS numbers
are on no list of the demo reference data and their descriptions contain only keywords of
their own HTS chapter. :data:`SPECIAL` holds the goods that scenarios use on purpose (excise,
PGA, AD/CVD, pill presses, ...). ``value_bands.csv`` of the demo reference set was derived
from both with :func:`band_for`, and a unit test keeps them in step.
"""

from __future__ import annotations

from dataclasses import dataclass

from s321.models import Mode

__all__ = [
    "BROKER_FILERS",
    "CARRIERS",
    "CATALOGUE",
    "CONSIGNEE_PLACES",
    "FIRST_NAMES",
    "MARKETPLACES",
    "SELLER_PLACES",
    "SPECIAL",
    "STREETS",
    "SURNAMES",
    "Carrier",
    "Marketplace",
    "Product",
    "band_for",
    "seller_names",
]


@dataclass(frozen=True, slots=True)
class Product:
    """One kind of goods: its 10-digit HTS, how sellers describe it, its price and weight."""

    code: str
    hts: str
    descriptions: tuple[str, ...]
    price: tuple[float, float]  # USD per unit, what ordinary listings ask
    weight: tuple[float, float]  # kg per unit, net
    origins: tuple[str, ...]

    @property
    def hts6(self) -> str:
        return self.hts[:6]

    @property
    def chapter(self) -> str:
        return self.hts[:2]


def _p(
    code: str,
    hts: str,
    descriptions: tuple[str, ...],
    price: tuple[float, float],
    weight: tuple[float, float],
    origins: str,
) -> Product:
    return Product(code, hts, descriptions, price, weight, tuple(origins.split()))


#: Goods that trigger no rule on their own (chapter keywords listed in hts_keywords.csv).
CATALOGUE: tuple[Product, ...] = (
    _p(
        "tshirt",
        "6109100012",
        (
            "{color} men's cotton crew neck t-shirt size {size}",
            "women's {color} cotton v-neck t-shirt short sleeve",
        ),
        (4.0, 18.0),
        (0.15, 0.25),
        "CN BD VN IN PK",
    ),
    _p(
        "hoodie",
        "6110202079",
        (
            "{color} cotton pullover hoodie with kangaroo pocket",
            "unisex fleece lined cotton sweatshirt {color} size {size}",
        ),
        (12.0, 45.0),
        (0.4, 0.7),
        "CN PK BD",
    ),
    _p(
        "dress",
        "6104432010",
        (
            "women's {color} knit midi dress polyester jersey",
            "sleeveless knit summer dress {color} size {size}",
        ),
        (10.0, 40.0),
        (0.2, 0.4),
        "CN VN",
    ),
    _p(
        "jeans",
        "6204624011",
        (
            "women's high waist stretch denim jeans {color} size {size}",
            "slim fit cropped denim jeans for women",
        ),
        (12.0, 50.0),
        (0.5, 0.8),
        "CN BD PK MX",
    ),
    _p(
        "blouse",
        "6206303040",
        (
            "women's {color} cotton button front blouse long sleeve",
            "cotton poplin peasant blouse with embroidered trim",
        ),
        (8.0, 35.0),
        (0.15, 0.3),
        "IN CN VN",
    ),
    _p(
        "socks",
        "6115959000",
        ("cotton crew socks six pairs {color}", "men's cotton ankle socks cushioned sole"),
        (1.5, 6.0),
        (0.05, 0.08),
        "CN TR PK",
    ),
    _p(
        "romper",
        "6111206010",
        (
            "baby cotton short sleeve romper {color} 6-12 months",
            "infant cotton snap romper with footies",
        ),
        (6.0, 20.0),
        (0.1, 0.2),
        "CN BD IN",
    ),
    _p(
        "sneakers",
        "6404119020",
        (
            "men's lightweight mesh running shoes {color} size {shoe}",
            "women's knit slip-on sneakers breathable {color}",
        ),
        (15.0, 90.0),
        (0.6, 1.1),
        "CN VN ID",
    ),
    _p(
        "boots",
        "6403916050",
        (
            "women's leather ankle boots side zip {color} size {shoe}",
            "men's leather chukka boots lace-up {color}",
        ),
        (25.0, 120.0),
        (0.9, 1.6),
        "CN VN IN",
    ),
    _p(
        "sandals",
        "6402993165",
        (
            "women's rubber flip-flop sandals {color} size {shoe}",
            "eva slide sandals for pool and beach {color}",
        ),
        (5.0, 30.0),
        (0.3, 0.6),
        "CN VN BR",
    ),
    _p(
        "blocks",
        "9503000073",
        (
            "plastic building blocks set 520 pieces city vehicles",
            "magnetic building blocks 64 piece educational set",
        ),
        (8.0, 60.0),
        (0.3, 1.5),
        "CN VN",
    ),
    _p(
        "plush",
        "9503000090",
        ("soft plush toy bear 30 cm {color}", "stuffed plush toy dinosaur with embroidered eyes"),
        (5.0, 30.0),
        (0.1, 0.5),
        "CN VN ID",
    ),
    _p(
        "yogamat",
        "9506910030",
        (
            "non-slip tpe yoga mat 6 mm {color} with carry strap",
            "foldable travel yoga mat 183 x 61 cm",
        ),
        (8.0, 35.0),
        (0.8, 1.6),
        "CN TW",
    ),
    _p(
        "earbuds",
        "8518302000",
        (
            "true wireless bluetooth earbuds with charging case {color}",
            "wired in-ear headphones with microphone 3.5 mm jack",
        ),
        (8.0, 80.0),
        (0.05, 0.2),
        "CN VN",
    ),
    _p(
        "cable",
        "8544429090",
        ("braided usb-c charging cable 2 m {color}", "usb-c to lightning usb cable 1 m"),
        (2.0, 15.0),
        (0.03, 0.1),
        "CN VN",
    ),
    _p(
        "charger",
        "8504409580",
        ("65 w gan wall charger with two usb-c ports", "usb-c fast wall charger 20 w {color}"),
        (5.0, 35.0),
        (0.05, 0.2),
        "CN VN",
    ),
    _p(
        "keyboard",
        "8471602000",
        (
            "mechanical gaming keyboard rgb backlit blue switches",
            "slim wireless keyboard with numeric keypad {color}",
        ),
        (15.0, 120.0),
        (0.4, 1.2),
        "CN TW",
    ),
    _p(
        "laptop",
        "8471300100",
        ("14 inch laptop computer 8 gb ram 256 gb ssd", "15.6 inch laptop computer intel core i5"),
        (180.0, 700.0),
        (1.1, 2.5),
        "CN TW",
    ),
    _p(
        "smartwatch",
        "8517620090",
        (
            "fitness smartwatch with heart rate monitor {color}",
            "smartwatch 1.8 inch touch screen bluetooth calling",
        ),
        (20.0, 150.0),
        (0.05, 0.15),
        "CN VN",
    ),
    _p(
        "hairdryer",
        "8516310000",
        ("ionic hair dryer 1800 w with diffuser {color}", "compact folding travel hair dryer"),
        (12.0, 60.0),
        (0.4, 0.8),
        "CN",
    ),
    _p(
        "blender",
        "8509400045",
        (
            "portable personal blender 600 ml usb rechargeable",
            "countertop blender 1200 w with glass jar",
        ),
        (20.0, 90.0),
        (1.2, 3.0),
        "CN",
    ),
    _p(
        "flashdrive",
        "8523510000",
        ("64 gb usb 3.0 flash drive metal casing", "128 gb usb-c flash drive keychain"),
        (4.0, 40.0),
        (0.01, 0.05),
        "CN TW",
    ),
    _p(
        "serum",
        "3304995000",
        ("hyaluronic acid face serum 30 ml", "vitamin c brightening face serum 50 ml"),
        (5.0, 45.0),
        (0.05, 0.15),
        "KR CN FR JP",
    ),
    _p(
        "eyeshadow",
        "3304200000",
        ("18 colour eyeshadow palette matte and shimmer", "cream eyeshadow stick {color}"),
        (4.0, 30.0),
        (0.05, 0.2),
        "KR CN",
    ),
    _p(
        "shampoo",
        "3305100000",
        ("argan oil moisturising shampoo 500 ml", "sulfate free shampoo for curly hair 300 ml"),
        (4.0, 25.0),
        (0.3, 0.6),
        "KR FR TR",
    ),
    _p(
        "utensils",
        "7323930080",
        ("stainless steel kitchen utensil set 5 piece", "stainless steel cooking utensil set"),
        (6.0, 35.0),
        (0.4, 1.0),
        "CN IN",
    ),
    _p(
        "containers",
        "3924104000",
        (
            "plastic food storage containers with lids 10 pack",
            "bpa free food storage containers set of 6",
        ),
        (5.0, 30.0),
        (0.4, 1.2),
        "CN VN",
    ),
    _p(
        "handbag",
        "4202219000",
        (
            "women's genuine leather handbag {color} top handle",
            "leather crossbody handbag with adjustable strap",
        ),
        (20.0, 150.0),
        (0.4, 1.0),
        "CN IN IT",
    ),
    _p(
        "backpack",
        "4202923131",
        (
            "water resistant backpack with padded sleeve {color}",
            "polyester hiking backpack 30 l with rain cover",
        ),
        (10.0, 60.0),
        (0.4, 1.0),
        "CN VN",
    ),
    _p(
        "sunglasses",
        "9004100000",
        ("polarised sunglasses uv400 {color} frame", "retro round sunglasses metal frame"),
        (4.0, 40.0),
        (0.03, 0.08),
        "CN IT",
    ),
    _p(
        "earrings",
        "7117199000",
        ("gold plated hoop earrings 30 mm", "sterling look crystal stud earrings set"),
        (2.0, 25.0),
        (0.01, 0.05),
        "CN IN TH",
    ),
    _p(
        "phonecase",
        "3926909990",
        ("clear shockproof phone case with raised edges", "silicone phone case {color} soft touch"),
        (2.0, 20.0),
        (0.03, 0.08),
        "CN VN",
    ),
    _p(
        "flask",
        "9617001000",
        ("double wall vacuum flask 750 ml {color}", "stainless steel vacuum flask 1 l with cup"),
        (8.0, 35.0),
        (0.3, 0.6),
        "CN",
    ),
    _p(
        "desklamp",
        "9405211000",
        ("led desk lamp dimmable with usb port {color}", "clamp led desk lamp for reading"),
        (10.0, 45.0),
        (0.6, 1.5),
        "CN",
    ),
)

#: Goods that scenarios use to trigger list-based rules, by scenario purpose.
SPECIAL: dict[str, Product] = {
    p.code: p
    for p in (
        _p(
            "wine",
            "2204215040",
            ("red wine cabernet sauvignon 750 ml bottle",),
            (15.0, 60.0),
            (1.2, 1.5),
            "FR IT CL",
        ),
        _p(
            "whisky",
            "2208306040",
            ("single malt whisky 700 ml presentation tube",),
            (30.0, 120.0),
            (1.2, 1.6),
            "GB JP",
        ),
        _p(
            "cigarettes",
            "2402208000",
            ("cigarettes king size carton of 200",),
            (30.0, 90.0),
            (0.25, 0.35),
            "ID TR",
        ),
        _p(
            "eliquid",
            "2404120000",
            ("nicotine e-liquid 30 ml bottles pack of 10",),
            (10.0, 40.0),
            (0.3, 0.5),
            "CN",
        ),
        _p(
            "perfume",
            "3303003000",
            (
                "eau de parfum spray 100 ml for women",
                "eau de parfum travel spray 30 ml",
                "perfume rollerball 10 ml floral",
            ),
            (3.0, 90.0),  # rollerballs and minis from $3: perfume at $5 or less is no excise
            (0.08, 0.5),
            "FR AE",
        ),
        _p(
            "supplement",
            "2106909998",
            ("vitamin d3 dietary supplement softgels 120 count",),
            (8.0, 35.0),
            (0.1, 0.3),
            "CA IN",
        ),
        _p(
            "coffee",
            "0901210035",
            ("whole bean roasted coffee beans 1 kg bag",),
            (12.0, 40.0),
            (1.0, 1.1),
            "CO VN",
        ),
        _p(
            "dogtreats",
            "2309100010",
            ("freeze dried chicken dog treats 500 g",),
            (8.0, 30.0),
            (0.5, 0.6),
            "CN TH",
        ),
        _p(
            "seeds",
            "1209918010",
            ("heirloom tomato vegetable seeds 20 packets",),
            (5.0, 20.0),
            (0.05, 0.15),
            "GB NL",
        ),
        _p(
            "disinfectant",
            "3808945000",
            ("disinfectant wipes lemon scent 80 count",),
            (4.0, 15.0),
            (0.4, 0.7),
            "CN",
        ),
        _p(
            "hangers",
            "7326200020",
            ("steel wire hangers powder coated 100 pack",),
            (15.0, 45.0),
            (2.5, 4.0),
            "CN VN",
        ),
        _p(
            "plates",
            "4823690040",
            ("disposable paper plates 9 inch 200 count",),
            (10.0, 30.0),
            (1.5, 2.5),
            "CN VN",
        ),
        _p(
            "handtruck",
            "8716805010",
            ("folding steel hand truck 150 kg capacity",),
            (35.0, 120.0),
            (6.0, 11.0),
            "CN",
        ),
        _p(
            "solarpanel",
            "8541430010",
            ("monocrystalline solar panel 100 w module",),
            (60.0, 180.0),
            (6.0, 8.0),
            "VN MY",
        ),
        _p(
            "tabletpress",
            "8479899499",
            ("single punch tablet press machine tdp 5",),
            (300.0, 750.0),
            (20.0, 35.0),
            "CN IN",
        ),
        _p(
            "punchdie",
            "8207306000",
            ("tdp punch and die set 12 mm round",),
            (40.0, 200.0),
            (0.8, 2.0),
            "CN IN",
        ),
        _p(
            "cottontee",
            "6109100012",
            ("men's cotton crew neck t-shirt size {size}",),
            (4.0, 18.0),
            (0.15, 0.25),
            "CN",
        ),
        _p(
            "brandbag",
            "4202219000",
            ("{brand} quilted leather handbag {color}",),
            (20.0, 150.0),
            (0.4, 1.0),
            "CN IT",
        ),
        _p(
            "brandsneakers",
            "6404119020",
            ("{brand} mesh running shoes {color} size {shoe}",),
            (15.0, 90.0),
            (0.6, 1.1),
            "CN VN",
        ),
        _p(
            "brandearbuds",
            "8518302000",
            ("{brand} wireless earbuds with charging case",),
            (8.0, 80.0),
            (0.05, 0.2),
            "CN VN",
        ),
        _p(
            "brandwatch",
            "8517620090",
            ("{brand} smartwatch with stainless steel band",),
            (20.0, 150.0),
            (0.05, 0.15),
            "CN",
        ),
    )
}


def band_for(products: tuple[Product, ...]) -> tuple[float, float, float, float]:
    """The reference band (USD per kg min/max, USD per unit min/max) for goods of one HTS-6.

    Wide enough that no lawful ordinary parcel of these goods is an anomaly: the floors are a
    quarter of the cheapest ordinary listing, per kg over the heaviest unit in a heavy package
    (net × 1.1 + 0.5 kg), since a cheap light item often ships in a box that outweighs it and
    R12 then judges it by the gross weight; the ceilings are twice the dearest listing, per kg
    over the lightest unit. What falls outside is junk data (a laptop declared at $5, a parcel
    weighing ten times what its goods do), not a bargain.
    """
    pmin = min(p.price[0] for p in products)
    pmax = max(p.price[1] for p in products)
    wmin = min(p.weight[0] for p in products)
    wmax = max(p.weight[1] for p in products)
    kg_min = pmin / 4 / (wmax * 1.1 + 0.5)
    kg_max = pmax / wmin * 2.0
    return (round(kg_min, 2), round(kg_max, 2), round(pmin / 4, 2), round(pmax * 2.0, 2))


@dataclass(frozen=True, slots=True)
class Carrier:
    """An express carrier, postal consolidator, truck or ocean line and its identifiers."""

    code: str
    name: str
    originator: str  # CBP-assigned pilot originator code (fictional format)
    mode: Mode
    ports: tuple[str, ...]  # CBP Schedule D port codes
    lading: tuple[str, ...]  # foreign ports / airports of lading
    bill_prefix: str
    postal: bool = False  # house bill differs from the tracking (postal item) number


CARRIERS: tuple[Carrier, ...] = (
    Carrier(
        "NRX",
        "Northridge Air Express",
        "OC-NRX01",
        Mode.AIR,
        ("4701", "2720", "3901", "4196"),
        ("HKG", "PVG", "ICN", "SGN"),
        "NRX",
    ),
    Carrier(
        "SKL",
        "Skylark Courier Lines",
        "OC-SKL07",
        Mode.AIR,
        ("4701", "5206", "3126", "2720"),
        ("CAN", "TPE", "DEL", "IST"),
        "SKL",
    ),
    Carrier(
        "BPC",
        "Bluefin Postal Consolidators",
        "OC-BPC22",
        Mode.MAIL,
        ("4701", "2720", "3901"),
        ("SZX", "HKG", "BKK"),
        "BPC",
        postal=True,
    ),
    Carrier(
        "TBF",
        "Tri-Border Freightways",
        "OC-TBF05",
        Mode.TRUCK,
        ("2304", "3004"),
        ("MTY", "YVR"),
        "TBF",
    ),
    Carrier(
        "PLO",
        "Pacific Lantern Ocean Logistics",
        "OC-PLO11",
        Mode.OCEAN,
        ("2704",),
        ("CNYTN", "VNSGN"),
        "PLO",
    ),
)

#: Relative share of each carrier in ordinary traffic (air express dominates, as at JFK).
CARRIER_WEIGHTS: tuple[float, ...] = (0.38, 0.27, 0.2, 0.1, 0.05)


@dataclass(frozen=True, slots=True)
class Marketplace:
    """An online marketplace that files pilot records for the orders it sells."""

    name: str
    originator: str
    domain: str
    seller_prefix: str


MARKETPLACES: tuple[Marketplace, ...] = (
    Marketplace("Bazaarly", "OC-MKBZ01", "bazaarly.example", "BZ"),
    Marketplace("Tidewater Market", "OC-MKTW02", "tidewater-market.example", "TW"),
    Marketplace("Kestrel Mall", "OC-MKKM03", "kestrelmall.example", "KM"),
    Marketplace("Mercato Lumen", "OC-MKML04", "mercatolumen.example", "ML"),
)

#: Entry filer codes of the (fictional) brokers that file clean Type 86 entries.
BROKER_FILERS: tuple[str, ...] = ("B7T", "M2L", "4RD", "NX5", "H81", "P6C", "J3W", "T9E")

#: Where sellers and manufacturers are: country -> (city, region, postal code).
SELLER_PLACES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "CN": (
        ("Shenzhen", "Guangdong", "518000"),
        ("Guangzhou", "Guangdong", "510000"),
        ("Yiwu", "Zhejiang", "322000"),
        ("Ningbo", "Zhejiang", "315000"),
        ("Xiamen", "Fujian", "361000"),
    ),
    "VN": (("Ho Chi Minh City", "", "700000"), ("Hai Phong", "", "180000")),
    "BD": (("Dhaka", "", "1207"), ("Chittagong", "", "4000")),
    "IN": (
        ("Tiruppur", "Tamil Nadu", "641601"),
        ("Jaipur", "Rajasthan", "302001"),
        ("Mumbai", "Maharashtra", "400001"),
    ),
    "PK": (("Sialkot", "Punjab", "51310"), ("Faisalabad", "Punjab", "38000")),
    "MX": (("Monterrey", "Nuevo Leon", "64000"),),
    "ID": (("Bandung", "West Java", "40111"),),
    "TW": (("Taichung", "", "400"), ("New Taipei", "", "220")),
    "KR": (("Seoul", "", "04524"), ("Incheon", "", "21999")),
    "FR": (("Lyon", "", "69002"),),
    "JP": (("Osaka", "", "530-0001"),),
    "TR": (("Istanbul", "", "34000"), ("Denizli", "", "20010")),
    "IT": (("Florence", "", "50122"),),
    "TH": (("Bangkok", "", "10110"),),
    "BR": (("Franca", "Sao Paulo", "14400-000"),),
    "GB": (("Leeds", "", "LS1 4AP"),),
    "CL": (("Santiago", "", "8320000"),),
    "CO": (("Medellin", "", "050021"),),
    "CA": (("Mississauga", "ON", "L5B 3C2"),),
    "AE": (("Dubai", "", "00000"),),
    "NL": (("Rotterdam", "", "3011 AA"),),
    "MY": (("Penang", "", "10200"),),
}

#: U.S. consignee places: (city, state, ZIP) that exist; the streets are invented.
CONSIGNEE_PLACES: tuple[tuple[str, str, str], ...] = (
    ("Columbus", "OH", "43215"),
    ("Austin", "TX", "78704"),
    ("Tucson", "AZ", "85719"),
    ("Raleigh", "NC", "27601"),
    ("Boise", "ID", "83702"),
    ("Madison", "WI", "53703"),
    ("Richmond", "VA", "23220"),
    ("Omaha", "NE", "68102"),
    ("Spokane", "WA", "99201"),
    ("Albany", "NY", "12207"),
    ("Brooklyn", "NY", "11215"),
    ("Queens", "NY", "11375"),
    ("Newark", "NJ", "07102"),
    ("Miami", "FL", "33130"),
    ("Orlando", "FL", "32801"),
    ("Atlanta", "GA", "30303"),
    ("Nashville", "TN", "37203"),
    ("Denver", "CO", "80205"),
    ("Portland", "ME", "04101"),
    ("Providence", "RI", "02903"),
    ("Chicago", "IL", "60614"),
    ("Minneapolis", "MN", "55408"),
    ("St. Louis", "MO", "63104"),
    ("Dallas", "TX", "75204"),
    ("Houston", "TX", "77006"),
    ("Phoenix", "AZ", "85004"),
    ("Las Vegas", "NV", "89101"),
    ("Sacramento", "CA", "95814"),
    ("San Diego", "CA", "92103"),
    ("Oakland", "CA", "94612"),
    ("Seattle", "WA", "98122"),
    ("Salt Lake City", "UT", "84111"),
    ("Pittsburgh", "PA", "15213"),
    ("Baltimore", "MD", "21201"),
    ("Charleston", "SC", "29401"),
    ("Louisville", "KY", "40202"),
)

STREETS: tuple[str, ...] = (
    "Maplecrest Ave",
    "Larkhollow Rd",
    "Ambergate St",
    "Fernbrook Ln",
    "Quarry Ridge Dr",
    "Willowmere Ct",
    "Copperleaf Way",
    "Heronsgate Blvd",
    "Stonebridge Pl",
    "Juniper Hollow Rd",
    "Briarwick St",
    "Oakvale Ter",
    "Millbrook Pkwy",
    "Silverbirch Ave",
    "Cedarholt Ln",
    "Thistledown Dr",
    "Foxmoor St",
    "Galewood Ave",
    "Pinecastle Rd",
    "Ravensworth Ct",
)

FIRST_NAMES: tuple[str, ...] = (
    "Avery",
    "Jordan",
    "Mira",
    "Dario",
    "Lena",
    "Tobias",
    "Priya",
    "Mateo",
    "Hana",
    "Elias",
    "Noor",
    "Camila",
    "Rafael",
    "Ingrid",
    "Kofi",
    "Selma",
    "Arjun",
    "Beatriz",
    "Yusuf",
    "Maren",
    "Theo",
    "Leila",
    "Caspian",
    "Odette",
    "Ravi",
    "Sunniva",
    "Bastian",
    "Imani",
    "Lucia",
    "Wren",
)

SURNAMES: tuple[str, ...] = (
    "Quillfeather",
    "Brambleton",
    "Ostwick",
    "Farrowdale",
    "Penhallow",
    "Thorncastle",
    "Ashgrove",
    "Merriweather",
    "Calloway-Reyes",
    "Dunmore",
    "Ellingsworth",
    "Hollisford",
    "Kestrelman",
    "Lindqvist-Amaro",
    "Marchbanks",
    "Northcote",
    "Oakenshaw",
    "Pellworth",
    "Ravensdale",
    "Stillwater",
    "Tamberlyn",
    "Underhay",
    "Vantongeren",
    "Whitlocke",
    "Yarborough",
    "Zellweger-Moss",
    "Abernook",
    "Bellcourt",
    "Coldharbour",
    "Delacroix-Finn",
)

_SELLER_FIRST = (
    "Harborlight",
    "Brightleaf",
    "Lotus Crane",
    "Jadewind",
    "Silver Pine",
    "Morning Tide",
    "Golden Reed",
    "Blue Heron",
    "Crescent Bay",
    "Amberfield",
    "Red Lantern",
    "Cloudridge",
    "Sunmeadow",
    "Ivory Gate",
    "Rivermint",
    "Starfern",
)
_SELLER_TRADE = (
    "Home Goods",
    "Apparel",
    "Electronics",
    "Trading",
    "Textiles",
    "Cosmetics",
    "Sporting Goods",
    "Footwear",
)
_SELLER_SUFFIX = {
    "CN": "Co., Ltd.",
    "VN": "JSC",
    "BD": "Ltd.",
    "IN": "Pvt. Ltd.",
    "PK": "(Pvt) Ltd.",
    "MX": "S.A. de C.V.",
    "ID": "PT",
    "TW": "Co., Ltd.",
    "KR": "Co., Ltd.",
    "FR": "SARL",
    "JP": "K.K.",
    "TR": "Ltd. Şti.",
    "IT": "S.r.l.",
    "TH": "Co., Ltd.",
    "BR": "Ltda.",
    "GB": "Ltd",
    "CL": "SpA",
    "CO": "S.A.S.",
    "CA": "Inc.",
    "AE": "FZE",
    "NL": "B.V.",
    "MY": "Sdn. Bhd.",
}


def seller_names(country: str) -> tuple[str, ...]:
    """All fictional seller company names for a country (deterministic order)."""
    suffix = _SELLER_SUFFIX[country]
    out = []
    for first in _SELLER_FIRST:
        for trade in _SELLER_TRADE:
            name = f"{first} {trade} {suffix}" if suffix != "PT" else f"PT {first} {trade}"
            out.append(name)
    return tuple(out)
