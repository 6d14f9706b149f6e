"""The web app in headless Debian chromium (Playwright, sync API): what a person clicks through.

Skips when chromium or playwright is missing. ``FEWSHOT_SCREENSHOTS=assets`` also saves a screenshot of
each tab into that folder (how ``assets/screenshot-*.png`` are made).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
    pytest.skip(f"chromium is not installed ({CHROMIUM}); apt-get install -y chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(240)]

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage"]
SHOTS = os.environ.get("FEWSHOT_SCREENSHOTS")
WAIT_MS = 60_000


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as pw:
        exe = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
        b = pw.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_FLAGS)
        yield b
        b.close()


def shot(page: object, name: str, full_page: bool = False) -> None:
    """Save a screenshot when FEWSHOT_SCREENSHOTS names a folder."""
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        for close in page.locator("[data-testid=toast-close]").all():
            close.click()
        page.wait_for_timeout(500)
        page.screenshot(path=str(Path(SHOTS) / f"screenshot-{name}.png"), full_page=full_page)


def open_app(browser: object, url: str) -> tuple[object, object]:
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.goto(url, wait_until="domcontentloaded")
    page.get_by_role("button", name="Support tickets").wait_for(timeout=WAIT_MS)
    sync_api.expect(page.locator("#encoder-status")).to_contain_text("Encoder", timeout=WAIT_MS)  # a status line
    return context, page


def load_support_tickets(page: object) -> None:
    page.get_by_role("button", name="Support tickets").click()
    sync_api.expect(page.locator("#label-summary")).to_contain_text("5 labels · 30 examples", timeout=WAIT_MS)
    sync_api.expect(page.locator("#label-table")).to_contain_text("billing", timeout=WAIT_MS)


def test_label_classify_batch_download(browser: object, app_url: str, batch_csv: Path, tmp_path: Path) -> None:
    context, page = open_app(browser, app_url)
    if SHOTS:  # the screenshots show the page as a visitor finds it once the encoder is prepared
        sync_api.expect(page.locator("#encoder-status")).to_contain_text("Encoder ready", timeout=4 * WAIT_MS)
    load_support_tickets(page)
    shot(page, "labels")

    page.get_by_role("tab", name="Classify").click()
    page.locator("#classify-text textarea").fill("I was billed twice for the same order")
    page.locator("#classify-run").click()
    sync_api.expect(page.locator("#classify-verdict")).to_contain_text("billing", timeout=WAIT_MS)
    sync_api.expect(page.locator("#classify-bars")).to_contain_text("billing")
    sync_api.expect(page.locator("#classify-add input")).to_have_value("billing", timeout=WAIT_MS)
    sync_api.expect(page.locator("#classify-verdict")).to_contain_text("automatic unknown threshold")
    sync_api.expect(page.locator("#classify-threshold")).to_be_hidden()  # automatic unknown is the default
    sync_api.expect(page.locator("#encoder-status")).to_contain_text("Encoder ready", timeout=WAIT_MS)
    shot(page, "classify")
    page.locator("#classify-text textarea").fill("qwerty asdf")  # unlike every example
    page.locator("#classify-run").click()
    sync_api.expect(page.locator("#classify-verdict")).to_contain_text("below the automatic threshold",
                                                                      timeout=WAIT_MS)
    page.locator("#classify-auto input[type=checkbox]").uncheck()  # manual: the confidence slider appears
    sync_api.expect(page.locator("#classify-threshold")).to_be_visible(timeout=WAIT_MS)
    sync_api.expect(page.locator("#classify-verdict")).not_to_contain_text("automatic", timeout=WAIT_MS)

    page.get_by_role("tab", name="Batch").click()
    page.locator("#batch-file input[type=file]").set_input_files(str(batch_csv))
    sync_api.expect(page.locator("#batch-column input")).to_have_value("text", timeout=WAIT_MS)
    page.locator("#batch-run").click()
    sync_api.expect(page.locator("#batch-summary")).to_contain_text("22 rows labelled", timeout=WAIT_MS)
    link = page.locator("#batch-download a").first
    sync_api.expect(link).to_be_visible(timeout=WAIT_MS)
    shot(page, "batch")
    with page.expect_download(timeout=WAIT_MS) as info:
        link.click()
    saved = tmp_path / "labelled.csv"
    info.value.save_as(saved)
    out = pd.read_csv(saved, dtype=str, keep_default_na=False)
    assert len(out) == 23 and {"predicted_label", "predicted_top_3", "predicted_in_scope_score"} <= set(out.columns)
    assert out["text"].str.startswith("'=").any()

    page.get_by_role("tab", name="Evaluate").click()
    page.locator("#eval-file input[type=file]").set_input_files(str(batch_csv))
    page.wait_for_timeout(1500)  # let the column dropdowns fill
    page.locator("#eval-run").click()
    sync_api.expect(page.locator("#eval-metrics")).to_contain_text("Accuracy", timeout=WAIT_MS)
    sync_api.expect(page.locator("#eval-plot img, #eval-plot svg, #eval-plot canvas").first).to_be_visible(
        timeout=WAIT_MS)
    cell = page.locator("#eval-wrong [data-testid=cell-0-1]")  # a misclassified row's gold label
    sync_api.expect(cell).to_be_visible(timeout=WAIT_MS)
    cell.click()  # selecting the row fills the fields; then one click on "Add as example"
    sync_api.expect(page.locator("#eval-picked textarea")).not_to_have_value("", timeout=WAIT_MS)
    shot(page, "evaluate", full_page=True)
    page.locator("#eval-add").click()
    page.get_by_role("tab", name="Labels").click()
    sync_api.expect(page.locator("#label-summary")).to_contain_text("31 examples", timeout=WAIT_MS)

    page.wait_for_timeout(1000)  # the change is mirrored into the browser's storage after the summary shows
    page.reload(wait_until="domcontentloaded")  # the label set survives a reload (gr.BrowserState)
    sync_api.expect(page.locator("#label-summary")).to_contain_text("31 examples", timeout=WAIT_MS)
    context.close()


def test_two_browser_sessions_keep_their_own_labels(browser: object, app_url: str) -> None:
    ctx_a, page_a = open_app(browser, app_url)
    ctx_b, page_b = open_app(browser, app_url)
    load_support_tickets(page_a)
    page_b.get_by_role("button", name="News topics").click()
    sync_api.expect(page_b.locator("#label-summary")).to_contain_text("sports", timeout=WAIT_MS)
    page_a.get_by_role("button", name="Re-check label set").click()
    sync_api.expect(page_a.locator("#label-summary")).to_contain_text("billing", timeout=WAIT_MS)
    sync_api.expect(page_a.locator("#label-summary")).not_to_contain_text("sports")
    ctx_a.close()
    ctx_b.close()


def test_review_loop_batch_filter_unknown_add(browser: object, app_url: str, tmp_path: Path) -> None:
    """Batch -> review only the unknown rows -> add one as an example of a new label -> the label set grows."""
    context, page = open_app(browser, app_url)
    load_support_tickets(page)
    page.locator("#new-label textarea, #new-label input").first.fill("unknown")  # "none of these" examples
    page.locator("#new-lines textarea").fill(
        "a banana smoothie recipe with oat milk\nthe weather is lovely and sunny today")
    page.get_by_role("button", name="Add examples").click()
    sync_api.expect(page.locator("#label-summary")).to_contain_text("32 examples", timeout=WAIT_MS)
    src = tmp_path / "mixed.csv"
    pd.DataFrame({"text": ["I was billed twice", "banana smoothie recipe", "my parcel never arrived",
                           "the weather is lovely today"]}).to_csv(src, index=False)
    page.get_by_role("tab", name="Batch").click()
    sync_api.expect(page.locator("#batch-preview")).to_be_hidden()  # no empty table before the first batch
    page.locator("#batch-file input[type=file]").set_input_files(str(src))
    sync_api.expect(page.locator("#batch-column input")).to_have_value("text", timeout=WAIT_MS)
    page.locator("#batch-run").click()
    sync_api.expect(page.locator("#batch-summary")).to_contain_text("4 rows labelled", timeout=WAIT_MS)
    sync_api.expect(page.locator("#review-table")).to_contain_text("I was billed twice", timeout=WAIT_MS)
    page.locator("#review-unknown input[type=checkbox]").check()
    sync_api.expect(page.locator("#review-table")).not_to_contain_text("I was billed twice", timeout=WAIT_MS)
    sync_api.expect(page.locator("#review-table")).to_contain_text("banana smoothie recipe")
    page.locator("#review-table").get_by_text("banana smoothie recipe").click()
    sync_api.expect(page.locator("#review-picked textarea")).not_to_have_value("", timeout=WAIT_MS)
    sync_api.expect(page.locator("#review-add-label input")).to_have_value("")  # nothing preselected after unknown
    sync_api.expect(page.locator("#review-near")).to_contain_text("unknown", timeout=WAIT_MS)  # closest examples
    picked = page.locator("#review-picked textarea").input_value()
    page.locator("#review-add-label input").fill("food")
    page.locator("#review-add-label input").press("Enter")
    page.locator("#review-add").click()
    sync_api.expect(page.locator("#review-table")).to_contain_text("added as food", timeout=WAIT_MS)
    shot(page, "batch", full_page=True)
    page.get_by_role("tab", name="Labels").click()
    sync_api.expect(page.locator("#label-summary")).to_contain_text("33 examples", timeout=WAIT_MS)
    sync_api.expect(page.locator("#label-summary")).to_contain_text("food")  # the new label, 1 example
    page.locator("#label-table input[placeholder='Search...']").fill(picked)  # the table is virtual: search it
    sync_api.expect(page.locator("#label-table")).to_contain_text("food", timeout=WAIT_MS)
    context.close()


def test_groups_of_unknown_rows_become_none_of_these(browser: object, app_url: str, tmp_path: Path) -> None:
    """Batch (automatic unknown) -> find groups among the unknown rows -> add one as "none of these"."""
    context, page = open_app(browser, app_url)
    load_support_tickets(page)
    weather = ["will it rain tomorrow in Paris", "what's the weather forecast for the weekend",
               "is it going to snow tonight"]
    baking = ["what is a good recipe for banana bread", "how do I bake sourdough bread at home",
              "best recipe for chocolate chip cookies", "how long should I bake a lemon cake"]
    src = tmp_path / "topics.csv"
    pd.DataFrame({"text": ["I was billed twice", *baking[:2], "my parcel never arrived", *weather, *baking[2:],
                           "reset my password please"]}).to_csv(src, index=False)
    page.get_by_role("tab", name="Batch").click()
    page.locator("#batch-file input[type=file]").set_input_files(str(src))
    sync_api.expect(page.locator("#batch-column input")).to_have_value("text", timeout=WAIT_MS)
    page.locator("#batch-run").click()  # the automatic unknown is on by default
    sync_api.expect(page.locator("#batch-summary")).to_contain_text("10 rows labelled", timeout=WAIT_MS)
    page.locator("#review-groups-find").click()
    sync_api.expect(page.locator("#review-groups")).to_contain_text("bake", timeout=WAIT_MS)
    sync_api.expect(page.locator("#review-group input")).to_have_value("1")  # the largest preselected
    page.locator("#review-groups").get_by_text("weather", exact=False).first.click(timeout=WAIT_MS)
    sync_api.expect(page.locator("#review-group input")).to_have_value("2", timeout=WAIT_MS)
    page.locator("#review-group-label input").click(timeout=WAIT_MS)
    page.get_by_role("option", name='unknown ("none of these")').click(timeout=WAIT_MS)
    page.locator("#review-group-add").click(timeout=WAIT_MS)
    sync_api.expect(page.locator("#review-table")).to_contain_text("added as unknown", timeout=WAIT_MS)
    shot(page, "batch-groups", full_page=True)
    page.get_by_role("tab", name="Labels").click()
    sync_api.expect(page.locator("#label-summary")).to_contain_text("33 examples", timeout=WAIT_MS)
    context.close()


def test_a_refused_import_leaves_the_table_in_place(browser: object, app_url: str, tmp_path: Path) -> None:
    context, page = open_app(browser, app_url)
    load_support_tickets(page)
    binary = tmp_path / "sheet.csv"
    binary.write_bytes(b"PK\x03\x04\x14\x00\x00\x00binary\x00data")
    page.locator('[data-testid="Import CSV (text,label)-upload-button"]').set_input_files(str(binary))
    sync_api.expect(page.get_by_text("is not a text CSV").first).to_be_visible(timeout=WAIT_MS)  # the message
    sync_api.expect(page.locator("#label-table")).to_contain_text("billing")  # the table stays, with its content
    sync_api.expect(page.locator("#label-table")).to_be_visible()
    hidden = page.locator("#label-table .error").evaluate_all(  # no "Error" badge over the table (opacity 0)
        "els => els.every(e => { for (let n = e; n && n.id !== 'label-table'; n = n.parentElement) "
        "{ if (getComputedStyle(n).opacity === '0') return true; } return false; })")
    assert hidden
    sync_api.expect(page.locator("#label-summary")).to_contain_text("5 labels · 30 examples")
    context.close()


def test_multi_label_switch_classify_evaluate(browser: object, app_url: str, tmp_path: Path) -> None:
    """Tick multi-label, import examples with two-label cells, classify a two-request text, evaluate, reload."""
    examples = tmp_path / "tickets.csv"
    pd.DataFrame([
        ("I was charged twice on my card", "billing"), ("refund my last payment please", "billing"),
        ("my invoice shows the wrong amount", "billing"), ("why did my subscription price go up", "billing"),
        ("the app crashes when I open settings", "bug"), ("the page shows an error 500", "bug"),
        ("the button does nothing when I click it", "bug"), ("the screen freezes after login", "bug"),
        ("where is my parcel", "shipping"), ("my order has not arrived yet", "shipping"),
        ("the delivery is late again", "shipping"), ("which courier brings my package", "shipping"),
        ("the payment page crashed and I was charged anyway", "billing; bug"),
        ("the tracking page is broken and my parcel is lost", "bug; shipping")], columns=["text", "label"]
    ).to_csv(examples, index=False)
    gold = tmp_path / "gold.csv"
    pd.DataFrame([  # a few hard rows, so that the tables below have something to show
        ("I was charged twice on my card and the app crashes when I open settings", "billing; bug"),
        ("where is my parcel, it is late", "shipping"), ("my invoice is wrong", "billing"),
        ("the page shows an error", "bug"), ("refund me, and where is my order", "billing; shipping"),
        ("the app shows the wrong delivery date for my order", "bug; shipping"),
        ("my card was declined at checkout", "billing"), ("the courier left my box in the rain", "shipping"),
        ("I cannot log in and I was billed for a plan I cancelled", "billing; bug"),
        ("the price went up and nobody told me", "billing")], columns=["text", "labels"]).to_csv(gold, index=False)
    context, page = open_app(browser, app_url)
    page.locator("#multi-label input[type=checkbox]").check()
    page.locator('[data-testid="Import CSV (text,label)-upload-button"]').set_input_files(str(examples))
    sync_api.expect(page.locator("#label-summary")).to_contain_text("Multi-label · 3 labels · 14 examples",
                                                                    timeout=WAIT_MS)
    sync_api.expect(page.locator("#label-table")).to_contain_text("billing; bug")

    page.get_by_role("tab", name="Classify").click()
    page.locator("#classify-text textarea").fill("I was charged twice and now the app crashes when I open settings")
    page.locator("#classify-run").click()
    sync_api.expect(page.locator("#classify-verdict")).to_contain_text("above their thresholds", timeout=WAIT_MS)
    sync_api.expect(page.locator("#classify-matches")).to_contain_text("bug")
    sync_api.expect(page.locator("#classify-add input")).to_have_value(re.compile(r"^(bug; billing|billing; bug)$"),
                                                                      timeout=WAIT_MS)  # both labels preselected
    shot(page, "classify-multilabel")

    texts = tmp_path / "texts.csv"
    pd.DataFrame({"text": ["I was charged twice and the app crashes when I open settings", "where is my parcel",
                           "qwerty asdf zxcv"]}).to_csv(texts, index=False)
    page.get_by_role("tab", name="Batch").click()
    page.locator("#batch-file input[type=file]").set_input_files(str(texts))
    sync_api.expect(page.locator("#batch-column input")).to_have_value("text", timeout=WAIT_MS)
    page.locator("#batch-run").click()
    sync_api.expect(page.locator("#batch-summary")).to_contain_text("1 row(s) got several labels", timeout=WAIT_MS)
    sync_api.expect(page.locator("#batch-preview")).to_contain_text("shipping", timeout=WAIT_MS)
    sync_api.expect(page.locator("#review-table")).to_contain_text("where is my parcel", timeout=WAIT_MS)
    shot(page, "batch-multilabel", full_page=True)

    page.get_by_role("tab", name="Evaluate").click()
    page.locator("#eval-file input[type=file]").set_input_files(str(gold))
    sync_api.expect(page.locator("#eval-run")).to_be_enabled(timeout=WAIT_MS)
    page.wait_for_timeout(1500)  # let the column dropdowns fill
    page.locator("#eval-run").click()
    sync_api.expect(page.locator("#eval-metrics")).to_contain_text("Micro-F1", timeout=WAIT_MS)
    sync_api.expect(page.locator("#eval-metrics")).to_contain_text("subset accuracy")
    sync_api.expect(page.locator("#eval-per-label")).to_contain_text("shipping", timeout=WAIT_MS)
    # the single-label trade-off is hidden (its note may be gone from the page by the time it is looked for)
    sync_api.expect(page.locator("#eval-operating-point")).to_be_hidden(timeout=WAIT_MS)
    shot(page, "evaluate-multilabel", full_page=True)

    page.wait_for_timeout(1000)  # mirrored into the browser's storage
    page.reload(wait_until="domcontentloaded")  # the mode survives a reload with the label set
    sync_api.expect(page.locator("#label-summary")).to_contain_text("Multi-label", timeout=WAIT_MS)
    sync_api.expect(page.locator("#multi-label input[type=checkbox]")).to_be_checked(timeout=WAIT_MS)
    context.close()
