"""The dashboard's words in English and Japanese: one message table, units, numbers, weeks.

Pure. A message missing from the Japanese table falls back to the English one, so a page
never shows a key. Suppression reasons come from the core in English; the ones it writes
are matched by pattern and translated, any other is shown as it is.
"""

from __future__ import annotations

import re
from datetime import date

LANGUAGES = ("en", "ja")
DEFAULT = "en"

_EN: dict[str, str] = {
    "title": "scfed dashboard",
    "nav.chain": "Chain",
    "nav.grid": "Traffic lights",
    "nav.alerts": "Alerts",
    "nav.crisis": "Crisis",
    "switch": "日本語",
    "who": "Signed in as {who} (read-only)",
    "chain.title": "The chain at a glance",
    "chain.how": "Each tile is a commodity, coloured by the light of its current week: the first"
    " week of the latest demand-capacity release that contains it. “Later” names a worse light"
    " further out in that release's horizon.",
    "chain.buyers": "buyers",
    "chain.support": "Supplies the stages above",
    "chain.none": "No releases yet.",
    "later": "later: {light} {week}",
    "no_light": "no light",
    "new_alert": "new alert",
    "grid.title": "Traffic lights by week",
    "grid.how": "Latest release of each demand-capacity entry: green when demand is at most the"
    " actual capacity, orange when at most the maximum capacity, red above it.",
    "grid.release": "Release {week}, log index {index}, {survivors} firms took part",
    "grid.commodity": "Commodity",
    "grid.notes": "Why cells are suppressed",
    "grid.none": "No demand-capacity release yet.",
    "alerts.title": "Alerts",
    "alerts.how": "Each alert is a release that turned a commodity-week orange or red, or made it"
    " worse. “New” marks the alerts of each entry's latest release.",
    "alerts.none": "No alerts.",
    "alerts.entry": "Entry",
    "alerts.week": "Week",
    "alerts.change": "Change",
    "alerts.index": "Log index",
    "alerts.shown": "Alerts {first}–{last} of {total}.",
    "alerts.newer": "← newer",
    "alerts.older": "older →",
    "new": "new",
    "none_before": "none",
    "commodity.entry": "Entry “{entry}” ({metric}), latest release {week}",
    "commodity.how": "Lines are the published figures, shaded bands their 95% intervals. Past"
    " weeks come from the release of that week; the coming weeks from the latest release.",
    "commodity.contributors": "Contributors ({week})",
    "commodity.suppressed": "Suppressed",
    "commodity.histogram": "Distribution over firms, week {week}",
    "commodity.ratio": "Book-to-bill ratio",
    "commodity.none": "No release covers this commodity yet.",
    "commodity.chain": "Current light",
    "axis.week": "Week",
    "axis.ratio": "ratio",
    "interval": "95% interval",
    "contributors": "contributors",
    "light.green": "green",
    "light.orange": "orange",
    "light.red": "red",
    "light.suppressed": "suppressed",
    "uncertain": "uncertain",
    "error.404": "Not found: no such commodity, entry or page.",
    "error.405": "This dashboard is read-only.",
    "error.500": "The releases could not be read.",
    "metric.demand-capacity": "demand vs capacity",
    "metric.stock": "stock",
    "metric.book-to-bill": "book-to-bill",
    "metric.utilisation": "utilisation",
    "metric.days-of-supply": "days of supply",
    "metric.lead-time": "lead time",
    "component.demand": "demand",
    "component.capacity_actual": "actual capacity",
    "component.capacity_max": "maximum capacity",
    "component.stock_finished": "finished stock",
    "component.stock_wip": "work in progress",
    "component.bookings": "bookings",
    "component.billings": "billings",
    "component.utilisation": "utilisation",
    "component.firms": "firms",
    "component.need": "need",
    "component.spare": "spare capacity",
    "metric.need-spare": "need vs spare capacity",
    "crisis.title": "Crisis: need and spare capacity",
    "crisis.how": "In a crisis governance declared, firms post what they need and the capacity"
    " they can spare. The figures here are the federation's aggregates of those posts: summed"
    " by secure aggregation with noise added, so that no firm's post can be read from them."
    " Lines are the published figures, shaded bands and bracketed ranges their 95% intervals;"
    " past weeks come from the release of that week, the coming weeks from the latest release.",
    "crisis.inbox.before": "A firm's own posts, and the matches proposed to it, are not on this"
    " page: the firm sees them on its own node with ",
    "crisis.inbox.after": ". This page names no firm.",
    "crisis.declared": "Declared crises",
    "crisis.none_declared": "Governance has declared no crisis in the signed policy this"
    " dashboard reads.",
    "crisis.name": "Crisis",
    "crisis.purpose": "Purpose",
    "crisis.commodities": "Commodities",
    "crisis.period": "Period",
    "crisis.status": "Today",
    "crisis.span": "{start} – {end}",
    "crisis.on": "on today",
    "crisis.upcoming": "not on yet (from {start})",
    "crisis.ended": "ended ({end})",
    "crisis.figures": "Need and spare capacity by commodity",
    "crisis.no_figures": "No need-spare release yet: the figures appear once a round of a"
    " crisis's entry is released.",
    "crisis.of": "Declared crises of this commodity: {crises}",
    "crisis.entry": "Entry “{entry}”, latest release {week}, {survivors} firms took part",
    "crisis.unit": "Figures in {unit}.",
    "crisis.week": "Week",
    "crisis.need": "Need",
    "crisis.spare": "Spare capacity",
    "crisis.gap": "Gap (need \N{MINUS SIGN} spare)",
    "crisis.contributors": "Contributors (need / spare)",
    "crisis.gap_how": "The gap is need minus spare capacity, its interval from the noise of"
    " both: “short” where even its low end is above zero, “spare left” where even its high end"
    " is below, “within the noise” otherwise.",
    "gap.short": "short",
    "gap.spare": "spare left",
    "gap.even": "within the noise",
    "commodity.crisis": "See the crisis page.",
    "stage.materials": "materials",
    "stage.design": "design",
    "stage.fabrication": "fabrication",
    "stage.assembly-test-packaging": "assembly / test",
    "stage.equipment": "equipment",
}

_JA: dict[str, str] = {
    "title": "scfed ダッシュボード",
    "nav.chain": "サプライチェーン",
    "nav.grid": "信号",
    "nav.alerts": "アラート",
    "nav.crisis": "危機対応",
    "switch": "English",
    "who": "{who} として閲覧中（読み取り専用）",
    "chain.title": "サプライチェーン全体の状況",
    "chain.how": "各タイルは品目で、今週の信号の色で表示します（その品目を含む最新の需給リリースの"
    "最初の週）。「以降」は、そのリリースの対象期間内でより悪い信号が出る週を示します。",
    "chain.buyers": "購買企業",
    "chain.support": "上記の各工程に供給",
    "chain.none": "リリースはまだありません。",
    "later": "以降: {light} {week}",
    "no_light": "信号なし",
    "new_alert": "新しいアラート",
    "grid.title": "週ごとの信号",
    "grid.how": "需給エントリーごとの最新リリース。需要が実能力以下なら緑、最大能力以下なら橙、"
    "それを超えると赤です。",
    "grid.release": "リリース {week}、ログ番号 {index}、参加 {survivors} 社",
    "grid.commodity": "品目",
    "grid.notes": "非公表の理由",
    "grid.none": "需給リリースはまだありません。",
    "alerts.title": "アラート",
    "alerts.how": "品目・週の信号を橙か赤に変えた、または悪化させたリリースです。"
    "「新規」は各エントリーの最新リリースのアラートです。",
    "alerts.none": "アラートはありません。",
    "alerts.entry": "エントリー",
    "alerts.week": "週",
    "alerts.change": "変化",
    "alerts.index": "ログ番号",
    "alerts.shown": "全{total}件中 {first}–{last}件目",
    "alerts.newer": "← 新しい",
    "alerts.older": "古い →",
    "new": "新規",
    "none_before": "なし",
    "commodity.entry": "エントリー「{entry}」（{metric}）、最新リリース {week}",
    "commodity.how": "線は公表値、帯は95%区間です。過去の週はその週のリリース、"
    "今後の週は最新リリースの値です。",
    "commodity.contributors": "提供企業数（{week}）",
    "commodity.suppressed": "非公表",
    "commodity.histogram": "企業の分布、{week}",
    "commodity.ratio": "BBレシオ（受注/出荷）",
    "commodity.none": "この品目を含むリリースはまだありません。",
    "commodity.chain": "現在の信号",
    "axis.week": "週",
    "axis.ratio": "比率",
    "interval": "95%区間",
    "contributors": "提供企業数",
    "light.green": "緑",
    "light.orange": "橙",
    "light.red": "赤",
    "light.suppressed": "非公表",
    "uncertain": "不確実",
    "error.404": "見つかりません：該当する品目、エントリー、ページはありません。",
    "error.405": "このダッシュボードは読み取り専用です。",
    "error.500": "リリースを読み込めませんでした。",
    "metric.demand-capacity": "需要と能力",
    "metric.stock": "在庫",
    "metric.book-to-bill": "受注と出荷",
    "metric.utilisation": "稼働率",
    "metric.days-of-supply": "在庫日数",
    "metric.lead-time": "リードタイム",
    "component.demand": "需要",
    "component.capacity_actual": "実能力",
    "component.capacity_max": "最大能力",
    "component.stock_finished": "完成品在庫",
    "component.stock_wip": "仕掛品",
    "component.bookings": "受注",
    "component.billings": "出荷",
    "component.utilisation": "稼働率",
    "component.firms": "企業数",
    "component.need": "必要量",
    "component.spare": "余剰能力",
    "metric.need-spare": "必要量と余剰能力",
    "crisis.title": "危機対応：必要量と余剰能力",
    "crisis.how": "ガバナンスが宣言した危機の間、各社は必要な量と提供できる余剰能力を投稿します。"
    "ここに示す数値はそれらの投稿を連合が集計したもので、秘密集計（セキュアアグリゲーション）で合算し"
    "ノイズを加えているため、個々の企業の投稿は読み取れません。線は公表値、帯と括弧内の範囲は"
    "95%区間です。過去の週はその週のリリース、今後の週は最新リリースの値です。",
    "crisis.inbox.before": "自社の投稿や自社に提案されたマッチングは、このページには表示されま"
    "せん。自社のノードで ",
    "crisis.inbox.after": " を実行して確認してください。このページに企業名は表示されません。",
    "crisis.declared": "宣言された危機",
    "crisis.none_declared": "このダッシュボードが読み込む署名済みポリシーでは、ガバナンスによる"
    "危機の宣言はありません。",
    "crisis.name": "危機",
    "crisis.purpose": "目的",
    "crisis.commodities": "品目",
    "crisis.period": "期間",
    "crisis.status": "本日の状況",
    "crisis.span": "{start}〜{end}",
    "crisis.on": "発動中",
    "crisis.upcoming": "発動前（{start}から）",
    "crisis.ended": "終了（{end}）",
    "crisis.figures": "品目別の必要量と余剰能力",
    "crisis.no_figures": "必要量・余剰能力のリリースはまだありません。危機対応エントリーの"
    "ラウンドが公表されると表示されます。",
    "crisis.of": "この品目について宣言された危機：{crises}",
    "crisis.entry": "エントリー「{entry}」、最新リリース {week}、参加 {survivors} 社",
    "crisis.unit": "単位：{unit}",
    "crisis.week": "週",
    "crisis.need": "必要量",
    "crisis.spare": "余剰能力",
    "crisis.gap": "差（必要量 \N{MINUS SIGN} 余剰能力）",
    "crisis.contributors": "提供企業数（必要量・余剰能力）",
    "crisis.gap_how": "差は必要量から余剰能力を引いた値で、区間は両方のノイズから求めています。"
    "区間の下限も0を上回れば「不足」、上限も0を下回れば「余剰あり」、それ以外は「誤差の範囲内」です。",
    "gap.short": "不足",
    "gap.spare": "余剰あり",
    "gap.even": "誤差の範囲内",
    "commodity.crisis": "危機対応のページを見る",
    "stage.materials": "材料",
    "stage.design": "設計",
    "stage.fabrication": "前工程（ウェハ製造）",
    "stage.assembly-test-packaging": "後工程（組立・検査）",
    "stage.equipment": "製造装置",
    "class.discrete": "ディスクリート",
    "class.opto": "光半導体",
    "class.sensors": "センサー",
    "class.analog": "アナログ",
    "class.logic": "ロジック",
    "class.memory": "メモリ",
    "class.micro": "マイコン",
    "region.JP": "日本",
    "region.JP-Hokkaido": "北海道",
    "region.JP-Kansai": "関西",
    "region.JP-Kanto": "関東",
    "region.JP-Kyushu": "九州",
    "region.JP-Tohoku": "東北",
}

_TABLES = {"en": _EN, "ja": _JA}

#: The suppression reasons ``scfed.catalogue.disclosure`` writes, in Japanese.
_REASONS_JA = (
    (
        re.compile(r"estimated contributors below (\d+) in this week"),
        "この週の推定提供企業数が{0}未満",
    ),
    (re.compile(r"estimated contributors below (\d+)"), "推定提供企業数が{0}未満"),
    (
        re.compile(r"estimated value too close to zero to rule out one firm holding (\S+)"),
        "推定値がゼロに近く、1社が{0}を占める可能性を否定できない",
    ),
    (
        re.compile(r"above the entry's concentration scale: one firm holding (\S+) not ruled out"),
        "集中度の上限を超過：1社が{0}を占める可能性を否定できない",
    ),
    (
        re.compile(r"one firm may hold (\S+) or more \(estimated concentration index (\S+)\)"),
        "1社が{0}以上を占める可能性（推定集中度指数 {1}）",
    ),
    (
        re.compile(r"one firm may hold (\S+) or more in this week"),
        "この週、1社が{0}以上を占める可能性",
    ),
)
_UNIT = re.compile(r"(wafers \((\w+)\)|units|firms|permille x firms)(/week)?")
_UNITS_JA = {"units": "個", "firms": "社", "permille x firms": "‰ × 社"}


def choose(asked: str | None, remembered: str | None, accepted: str | None) -> str:
    """The page's language: the ``?lang=`` asked for, else the cookie's, else the browser's."""
    for candidate in (asked, remembered, accepted):
        if candidate in LANGUAGES:
            return candidate
    return DEFAULT


def message(lang: str, key: str, **values: object) -> str:
    """The message ``key`` in ``lang`` (English where Japanese has none), filled in."""
    text = _TABLES.get(lang, _EN).get(key) or _EN.get(key, key)
    return text.format(**values) if values else text


def optional(lang: str, key: str, default: str) -> str:
    """The message ``key`` if the language has one, else ``default`` (a name shown as is)."""
    return _TABLES.get(lang, _EN).get(key, default)


def light_name(lang: str, light: str) -> str:
    """A release's light in words: "red", or "red (uncertain)"; "" for none."""
    if not light:
        return message(lang, "no_light")
    base, _, rest = light.partition(" ")
    name = message(lang, f"light.{base}")
    return f"{name} ({message(lang, 'uncertain')})" if rest else name


def reason(lang: str, text: str) -> str:
    """A suppression reason in ``lang``."""
    if lang == "ja":
        for pattern, template in _REASONS_JA:
            found = pattern.fullmatch(text)
            if found:
                return template.format(*found.groups())
    return text


def unit(lang: str, text: str) -> str:
    """A unit from ``scfed.release.unit`` in ``lang``."""
    found = _UNIT.fullmatch(text)
    if lang != "ja" or not found:
        return text
    thing, wafer, weekly = found.groups()
    words = f"ウェハ（{wafer}）" if wafer else _UNITS_JA[thing]
    return f"{words}/週" if weekly else words


def bin_label(lang: str, component: str) -> str:
    """A histogram bin (``dos:7-14d``, ``lead:52w+``) as its axis label."""
    label = component.split(":", 1)[1]
    if lang != "ja":
        return label.replace("d", " days").replace("w", " weeks")
    label = label.replace("d", "日").replace("w", "週")
    return label.replace("+", "以上")


def number(value: float) -> str:
    """A count or figure with thousands separators; a figure below 10 with two decimals."""
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.0f}"


def signed(value: float) -> str:
    """A difference with its sign: +1,230, or 1,230 after a minus sign (not a hyphen)."""
    text = number(abs(value))
    if text.strip("0.,") == "":
        return text
    return f"+{text}" if value > 0 else f"\N{MINUS SIGN}{text}"


def iso_week(day: date) -> str:
    """A week by its ISO name, such as 2026-W48."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"
