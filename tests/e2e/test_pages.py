"""The pages for people (issue #7) in a real browser: Debian's Chromium, headless, driven
by Playwright against `docgate serve`. Verification by file input and by a real drop,
the language switch, the dashboard's chart, table and downloads, the exchanges page with
its statuses, preview and verification card, the CSP (no violation, no console error),
360 px without horizontal scrolling, and the keyboard path to the file chooser.

Screenshots go to var/test-output/screenshots/ (git-ignored); their paths are printed."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.fixtures.pdfs import simple_pdf
from tests.fixtures.service import exchange_envelope
from tests.fixtures.tools import missing_component, require_tool

A, B = "000.00.00.H41", "000.00.01.H41"
REPORT = "/v1/reports/e-exchange"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "test-output" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# every CSP violation reaches the console, where the watcher below collects it
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) =>
  console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI}`));
"""


@pytest.fixture(scope="module")
def browser():
    executable = require_tool("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # the test extra is not installed
        missing_component("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


class Watched:
    """A page whose console errors, uncaught exceptions and CSP violations are kept."""

    def __init__(self, page) -> None:
        self.page = page
        self.problems: list[str] = []
        self.watch(page)

    def watch(self, page) -> None:
        page.on(
            "console",
            lambda m: (
                self.problems.append(f"{m.type}: {m.text}")
                if m.type in ("error", "warning") or "Content Security Policy" in m.text
                else None
            ),
        )
        page.on("pageerror", lambda e: self.problems.append(f"pageerror: {e}"))

    def assert_clean(self) -> None:
        assert self.problems == []

    def shot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
        return path

    def no_horizontal_scroll(self, width: int = 360) -> None:
        self.page.set_viewport_size({"width": width, "height": 800})
        self.page.wait_for_timeout(150)  # layout, and the chart's redraw for the width
        wide = self.page.evaluate(
            """(w) => [...document.querySelectorAll("body *")]
                .filter((e) => e.getBoundingClientRect().right > w + 0.5)
                .filter((e) => !e.parentElement.closest(".table-scroll"))
                .map((e) => e.tagName + "#" + e.id + "." + e.className.baseVal ?? e.className)""",
            width,
        )
        assert self.page.evaluate("document.documentElement.scrollWidth") <= width, wide


@pytest.fixture
def web(browser):
    context = browser.new_context(viewport={"width": 1100, "height": 900}, accept_downloads=True)
    context.add_init_script(REPORT_CSP_VIOLATIONS)
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield Watched(page)
    context.close()


def _open(web: Watched, service, path: str):
    answer = web.page.goto(service.base_url + path)
    assert answer is not None and answer.status == 200
    headers = answer.headers
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-cache"
    return answer


def _login(web: Watched, token: str) -> None:
    web.page.fill("#token", token)
    web.page.get_by_role("button", name="Đăng nhập", exact=True).click()
    web.page.wait_for_selector("#session:not([hidden])")


def _signed_and_tampered(service) -> tuple[bytes, bytes]:
    answer = service.sign(simple_pdf(), service.token(A), "level=B-LT")
    assert answer.status == 200, answer.body[:300]
    tampered = bytearray(answer.body)
    pos = tampered.find(b"Page 1")
    tampered[pos : pos + 6] = b"Page 9"
    return answer.body, bytes(tampered)


def _pdf(name: str, data: bytes) -> dict:
    return {"name": name, "mimeType": "application/pdf", "buffer": data}


def test_verify_page_by_input_and_by_drop_in_both_languages(service, web):
    signed, tampered = _signed_and_tampered(service)
    page = web.page
    _open(web, service, "/")
    assert page.evaluate("document.documentElement.lang") == "vi"

    page.set_input_files("#file", _pdf("signed.pdf", signed))
    card = page.locator("#results .sig-card").first
    card.wait_for()
    assert page.locator("#results .banner").get_attribute("data-valid") == "true"
    assert card.get_attribute("data-indication") == "TOTAL_PASSED"
    assert card.locator(".verdict-text").inner_text() == "Hợp lệ"
    assert card.locator("svg.icon[data-verdict=TOTAL_PASSED]").count() == 1  # icon and text
    text = card.inner_text()
    assert "Ủy ban nhân dân tỉnh Thử nghiệm" in text and "PAdES B-LT" in text
    assert "(UTC+07:00, giờ Việt Nam)" in text
    assert "Không có thay đổi nào sau khi ký." in text

    # a real drop: a DataTransfer holding the file, dispatched on the drop zone
    transfer = page.evaluate_handle(
        """(b64) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], "tampered.pdf", {type: "application/pdf"}));
            return transfer;
        }""",
        base64.b64encode(tampered).decode(),
    )
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": transfer})
    page.locator("#results h2", has_text="Kết quả: tampered.pdf").wait_for()
    card = page.locator("#results .sig-card").first
    assert page.locator("#results .banner").get_attribute("data-valid") == "false"
    assert card.get_attribute("data-indication") == "TOTAL_FAILED"
    assert card.locator(".verdict-text").inner_text() == "Không hợp lệ"
    assert card.locator("svg.icon[data-verdict=TOTAL_FAILED]").count() == 1
    assert "Nội dung văn bản đã bị sửa sau khi ký" in card.inner_text()
    assert page.locator("#verify-status").inner_text() == "Đã kiểm tra 1 tệp."
    web.shot("verify-tampered-vi")

    page.get_by_role("button", name="Switch to English").click()
    assert page.evaluate("document.documentElement.lang") == "en"
    assert card.locator(".verdict-text").inner_text() == "Invalid"
    assert "The document is NOT validly signed" in page.locator("#results .banner").inner_text()
    assert "changed after signing" in card.inner_text()
    assert page.locator("#lang-switch").inner_text() == "Tiếng Việt"
    page.set_input_files("#file", _pdf("signed.pdf", signed))
    page.locator("#results h2", has_text="Result: signed.pdf").wait_for()
    assert page.locator("#results .sig-card .verdict-text").first.inner_text() == "Valid"
    web.shot("verify-valid-en")
    web.no_horizontal_scroll()
    web.shot("verify-valid-en-360")
    web.assert_clean()


def test_keyboard_reaches_the_named_file_chooser(service, web):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    signed, _ = _signed_and_tampered(service)
    page = web.page
    _open(web, service, "/")
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "file":
            break
    else:
        pytest.fail("the file input is not reachable with Tab")
    chooser = page.locator("#file")
    expect(chooser).to_have_accessible_name("Chọn tệp PDF để kiểm tra")
    assert page.get_by_label("Chọn tệp PDF để kiểm tra").evaluate("e => e.id") == "file"
    zone = page.locator("#dropzone")
    assert zone.evaluate("e => getComputedStyle(e).outlineStyle") == "solid"  # focus shows
    chooser_opened = None
    for _ in range(3):  # a loaded machine can swallow a key press; the focus stays put
        try:
            with page.expect_file_chooser(timeout=7000) as opened:
                page.keyboard.press("Space")
            chooser_opened = opened.value
            break
        except PlaywrightTimeout:
            assert page.evaluate("document.activeElement.id") == "file"
    assert chooser_opened is not None, "Space on the focused file input opened no chooser"
    chooser_opened.set_files(_pdf("signed.pdf", signed))
    verdict = page.locator("#results .sig-card .verdict-text").first
    verdict.wait_for()
    assert verdict.inner_text() == "Hợp lệ"
    assert page.locator("#results").get_attribute("aria-live") == "polite"
    web.assert_clean()


def _month() -> str:
    return dt.datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).strftime("%Y-%m")


def _run_report(service) -> dict:
    ran = service.request(
        "POST", f"{REPORT}/{_month()}/run", b"", {"Authorization": f"Bearer {service.token()}"}
    )
    assert ran.status == 201, ran.body
    return ran.json()


def _percent(rate) -> str:
    if rate is None:
        return "—"
    value = rate * 100
    text = f"{value:.0f}" if value == round(value) else f"{value:.1f}"
    return text.replace(".", ",") + "%"


def test_dashboard_chart_table_sorting_and_downloads(service, web):
    a = service.token(A)
    assert service.post_exchange(a, exchange_envelope([B]), simple_pdf()).status == 201
    paper = exchange_envelope([B], channel="paper", sign=False)
    assert service.post_exchange(a, paper, None).status == 201  # A below target this month
    report = _run_report(service)
    rows = {r["agency"]: r for r in report["agencies"]}
    assert rows[A]["below_target"] is True
    page = web.page
    _open(web, service, "/dashboard")
    assert page.locator("#report-area").is_hidden()
    _login(web, service.token())
    page.fill("#month", _month())
    page.get_by_role("button", name="Xem báo cáo").click()
    page.wait_for_selector("#chart svg")
    assert page.evaluate("sessionStorage.getItem('docgate.token')") == service.token()
    assert page.evaluate("localStorage.getItem('docgate.token')") is None

    bars = page.locator("#chart svg rect.bar")
    assert bars.count() == len(rows)
    for i in range(bars.count()):
        bar = bars.nth(i)
        row = rows[bar.get_attribute("data-agency")]
        rate = bar.get_attribute("data-rate")
        assert (float(rate) if rate else None) == row["e_rate"]
        assert ("below" in bar.get_attribute("class").split()) == bool(row["below_target"])
    target = page.locator("#chart svg line.target-line")
    assert target.count() == 1 and float(target.get_attribute("data-target")) == report["target"]

    table = page.locator("#report-body tr")
    assert table.count() == len(rows)
    for i in range(table.count()):
        tr = table.nth(i)
        row = rows[tr.get_attribute("data-agency")]
        cells = [c.strip() for c in tr.locator("th, td").all_inner_texts()]
        assert cells[0] == row["agency"] and cells[1] == row["name"]
        assert cells[2:6] == [
            str(row[k])
            for k in ("sent_electronic", "sent_paper", "received_electronic", "received_paper")
        ]
        assert cells[6:9] == [_percent(row[k]) for k in ("e_rate", "signed_rate", "on_time_rate")]
        below = "below-target" in (tr.get_attribute("class") or "")
        assert below == bool(row["below_target"])
        assert ("dưới mục tiêu" in cells[9]) == bool(row["below_target"])  # words, not colour

    # sorting: by e_rate ascending (no figure last), then descending
    header = page.locator("#report-head button[data-key=e_rate]")
    header.click()
    assert page.locator("#report-head th").nth(6).get_attribute("aria-sort") == "ascending"
    order = page.locator("#report-body tr").evaluate_all("rs => rs.map(r => r.dataset.agency)")
    rates = [rows[agency]["e_rate"] for agency in order]
    known = [r for r in rates if r is not None]
    assert rates == known + [None] * (len(rates) - len(known)) and known == sorted(known)
    header.click()
    assert page.locator("#report-head th").nth(6).get_attribute("aria-sort") == "descending"

    csv_api = service.get_as(
        service.token(), f"{REPORT}?month={_month()}&format=csv&revision={report['revision']}"
    )
    with page.expect_download() as download:
        page.get_by_role("button", name="Tải CSV").click()
    saved = Path(download.value.path())
    assert download.value.suggested_filename == f"e-exchange-{_month()}-r{report['revision']}.csv"
    assert saved.read_bytes() == csv_api.body
    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name="Tải báo cáo PDF có ký số").click()
    assert download.value.suggested_filename == f"e-exchange-{_month()}.pdf"
    assert Path(download.value.path()).read_bytes().startswith(b"%PDF-")
    web.shot("dashboard-admin")
    web.no_horizontal_scroll()
    web.shot("dashboard-admin-360")

    page.set_viewport_size({"width": 1100, "height": 900})
    page.get_by_role("button", name="Đăng xuất").click()
    assert page.evaluate("sessionStorage.getItem('docgate.token')") is None
    _login(web, a)
    page.wait_for_selector("#chart svg")
    assert page.locator("#chart svg rect.bar").count() == 1
    assert page.locator("#report-body tr").evaluate_all("rs => rs.map(r => r.dataset.agency)") == [
        A
    ]
    web.shot("dashboard-agency")
    web.assert_clean()


def _post_status(service, token: str, exchange_id: str, code: str) -> None:
    answer = service.request(
        "POST",
        f"/v1/exchanges/{exchange_id}/status",
        json.dumps({"code": code}).encode(),
        {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert answer.status == 200, answer.body


def test_exchanges_inbox_outbox_preview_and_card(service, web):
    subject = f"Về việc thử trang văn bản {uuid.uuid4().hex[:8]}"
    sent = service.post_exchange(
        service.token(A), exchange_envelope([B], subject=subject, number=77), simple_pdf()
    )
    assert sent.status == 201, sent.body
    xid = sent.json()["id"]
    _post_status(service, service.token(B), xid, "01")
    page = web.page
    _open(web, service, "/exchanges")

    _login(web, service.token(A))
    row = page.locator(f"#outbox-body tr[data-id='{xid}']")
    row.wait_for()
    assert subject in row.inner_text() and "77/UBND-VP" in row.inner_text()
    status = row.locator(f"li[data-agency='{B}']")
    assert status.get_attribute("data-code") == "01"
    assert status.inner_text() == f"{B}: 01 · Đã đến"
    assert page.locator(f"#inbox-body tr[data-id='{xid}']").count() == 0
    page.get_by_role("button", name="Đăng xuất").click()

    _login(web, service.token(B))
    row = page.locator(f"#inbox-body tr[data-id='{xid}']")
    row.wait_for()
    assert row.locator("td.status").inner_text() == "01 · Đã đến"
    assert "Ủy ban nhân dân tỉnh Thử nghiệm" in row.inner_text()  # the sender, by name
    row.get_by_role("button", name="Kiểm tra chữ ký 77/UBND-VP").click()
    card = page.locator("#exchange-card .sig-card").first
    card.wait_for()
    assert card.locator(".verdict-text").inner_text() == "Hợp lệ"
    assert "77/UBND-VP" in page.locator("#exchange-card h2").inner_text()
    page.get_by_role("button", name="Kiểm tra lại ngay").click()
    page.wait_for_selector("#exchange-card >> text=Kết quả kiểm tra vừa thực hiện.")
    assert page.locator("#exchange-card .sig-card .verdict-text").first.inner_text() == "Hợp lệ"

    with page.expect_popup() as popup:
        row.get_by_role("button", name="Xem văn bản 77/UBND-VP").click()
    tab = popup.value
    web.watch(tab)
    tab.wait_for_url("blob:**")
    assert tab.url.startswith(f"blob:{service.base_url}/")
    assert tab.evaluate("document.contentType") == "application/pdf"  # the viewer, not a page
    tab.close()

    page.get_by_role("button", name="Switch to English").click()
    assert row.locator("td.status").inner_text() == "01 · Arrived"
    assert card.locator(".verdict-text").inner_text() == "Valid"
    web.shot("exchanges-card-en")
    web.no_horizontal_scroll()
    web.shot("exchanges-card-en-360")
    web.assert_clean()


def test_every_page_fits_360_px_and_runs_under_its_csp(service, web):
    for path in ("/", "/dashboard", "/exchanges"):
        web.page.set_viewport_size({"width": 360, "height": 800})
        _open(web, service, path)
        web.page.wait_for_load_state("load")
        assert web.page.locator("#lang-switch").is_visible()
        web.no_horizontal_scroll()
    # an inline script is refused by the policy (and reported), proving the CSP is enforced
    web.page.evaluate(
        """() => { const s = document.createElement("script");
                   s.textContent = "window.inlineRan = true"; document.body.append(s); }"""
    )
    assert web.page.evaluate("window.inlineRan === true") is False
    assert any("CSP violation: script-src" in p for p in web.problems)
    web.problems = [p for p in web.problems if "script-src" not in p]
    web.assert_clean()
