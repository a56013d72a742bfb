"""The web page at /, in a real browser, against the real service (issue 8).

One tab walks through what a user does, in file order: an API error shown as a message,
upload and train a tiny model while its progress bar moves, tag a text, compare and
promote models, read a model's confusion matrix and example errors, bulk-tag a file and
download the results. Every page is checked with axe-core (no serious or critical
violation) and photographed at 1280×800 and 390×844 into var/screenshots/.
"""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.ui.conftest import API_KEY, SCREENSHOTS, VIEWPORTS

pytestmark = [pytest.mark.services, pytest.mark.ui]

AXE = Path(__file__).with_name("vendor") / "axe-core" / "axe.min.js"
TRAIN = {"epochs": "5", "learning-rate": "0.005", "batch-size": "16"}
state: dict[str, Any] = {}


@pytest.fixture(scope="module")
def client(ui_stack: dict) -> httpx.Client:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=ui_stack["base"], timeout=60, headers=headers) as c:
        yield c


def serious_violations(page) -> list[str]:
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        """async () => {
          const r = await axe.run(document, {resultTypes: ["violations"]});
          return r.violations
            .filter(v => v.impact === "serious" || v.impact === "critical")
            .map(v => `${v.id} (${v.impact}): ${v.help} · ${v.nodes.slice(0, 3)
              .map(n => n.target.join(" ")).join(" | ")}`);
        }"""
    )
    return found


def check_page(page, name: str) -> None:
    """axe-core at both sizes, and a screenshot at each."""
    for size, viewport in VIEWPORTS.items():
        page.set_viewport_size(viewport)
        page.wait_for_timeout(150)  # layout and charts follow the resize
        assert serious_violations(page) == [], f"{name} at {size}"
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{size}.png"), full_page=True)
    page.set_viewport_size(VIEWPORTS["desktop"])
    assert page.js_errors == [], page.js_errors
    banner = page.locator("#message")
    assert not banner.is_visible() or "Page error" not in banner.inner_text()


def open_page(page, route: str) -> None:
    page.goto(f"/{route}")
    page.wait_for_selector("main h1")


def test_the_page_is_public_and_serves_only_its_own_files(ui_stack: dict) -> None:
    base = ui_stack["base"]
    page = httpx.get(f"{base}/")  # no API key: the page holds no data
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("app.js", "app.css", "analysis.js", "vendor/uplot/uPlot.iife.min.js"):
        assert httpx.get(f"{base}/static/{asset}").status_code == 200, asset
    for outside in ("../app.py", "..%2Froutes%2Fweb.py", "index.html", "nope.js"):
        # Never served: 404, or 401 where the client's path normalisation ("/static/../app.py"
        # is sent as "/app.py") leaves the public paths and the keys decide first.
        assert httpx.get(f"{base}/static/{outside}").status_code in (401, 404), outside
    assert httpx.get(f"{base}/models").status_code == 401  # the API itself still needs the key
    assert httpx.get(f"{base}/docs").status_code == 200


def test_an_api_error_is_shown_as_a_message_and_the_key_field_fixes_it(page) -> None:
    open_page(page, "#/")
    assert page.title().startswith("Try it")
    page.click("#find")
    error = page.locator("#entities .error-box")
    error.wait_for()
    assert "API key" in error.inner_text()  # 401 without a key, in words
    check_page(page, "error-no-key")

    page.fill("#api-key", API_KEY)
    page.click("#key-form button")
    page.click("#find")
    page.locator("#entities .error-box", has_text="no model is in production").wait_for()
    assert page.evaluate("() => sessionStorage.getItem('ner-api-key')") == API_KEY


def test_upload_shows_the_report_and_every_error_with_its_line(page, train_csv, tmp_path) -> None:
    open_page(page, "#/data")
    bad = tmp_path / "bad.csv"
    bad.write_text("text,labels\nAngela Merkel,B-PER\nOslo,B-XYZ I-PER\n")
    page.set_input_files("#upload-file", str(bad))
    page.click("#upload-form button[type=submit]")
    problems = page.locator(".error-box li")
    problems.first.wait_for()
    lines = problems.all_inner_texts()
    assert lines and all(line.startswith("line ") for line in lines), lines
    assert any(line.startswith("line 2") for line in lines) and any(
        line.startswith("line 3") for line in lines
    )

    page.set_input_files("#upload-file", str(train_csv))
    page.fill("#upload-name", "people")
    page.click("#upload-form button[type=submit]")
    report = page.locator("#dataset-report")
    report.wait_for()
    assert "120 sentences" in report.inner_text()
    assert {"LOC", "ORG", "PER"} <= set(report.locator("tbody td:first-child").all_inner_texts())
    check_page(page, "data")


def test_training_from_the_page_moves_the_progress_bar_to_success(page, client) -> None:
    # The preset shows what it changes as the fields' placeholders.
    page.select_option("#preset", "accurate")
    assert page.get_attribute("#learning-rate", "placeholder") == "0.00005"
    assert page.get_attribute("#base-model", "placeholder") == "all-mpnet-base-v2"
    page.select_option("#preset", "default")
    assert page.get_attribute("#learning-rate", "placeholder") == "0.0001"
    for name, value in TRAIN.items():
        page.fill(f"#{name}", value)
    assert page.is_checked("#final-fit")  # the default: on
    page.click("#start-training")
    page.wait_for_url("**/#/jobs/*")
    job_id = page.url.rsplit("/", 1)[-1]
    seen: list[float] = []
    deadline = time.monotonic() + 180
    status = ""
    while time.monotonic() < deadline:
        seen.append(float(page.get_attribute("main progress", "value") or 0))
        status = page.locator("main .badge").first.inner_text()
        if status in ("succeeded", "failed"):
            break
        page.wait_for_timeout(250)
    job = client.get(f"/jobs/{job_id}").json()
    assert status == "succeeded", job
    assert job["params"]["preset"] == "default"
    assert len(set(seen)) > 2, seen  # it moved while the job ran
    assert seen == sorted(seen)
    # The curves are drawn (uPlot canvases) and the per-type table is filled in.
    page.locator("#loss-chart canvas").wait_for()
    page.locator("#f1-chart canvas").wait_for()
    page.locator("#job-scores table.per-type").wait_for()
    assert {"LOC", "ORG", "PER"} <= set(
        page.locator("#job-scores tbody th").all_inner_texts()
    ) or "PER" in page.locator("#job-scores").inner_text()
    job = client.get(f"/jobs/{job_id}").json()
    assert job["history"]["loss"] and job["history"]["validation"]
    # No validation data chosen: the final fit on training + validation ran, and its curve
    # is drawn beside the loss.
    assert job["history"]["final_fit"]
    assert "final fit" in page.locator("#loss-chart").inner_text()
    state["v1"] = job["model_version"]
    check_page(page, "job")

    # A second, weaker model (one epoch) to compare and promote; trained while we go on.
    r = client.post(
        "/jobs/train",
        json={"dataset_id": job["dataset_id"], "epochs": 1, "learning_rate": 1e-3, "seed": 3},
    )
    assert r.status_code == 202, r.text
    state["job2"] = r.json()["id"]

    open_page(page, "#/jobs")
    page.locator(f"tr[data-job='{job_id}'] .status-succeeded").wait_for()
    check_page(page, "jobs")


def test_predict_highlights_the_entities_predict_returns(page, client) -> None:
    text = "Angela Merkel lives in Paris ."
    deadline = time.monotonic() + 20
    while client.post("/predict", json={"text": text}).status_code != 200:
        assert time.monotonic() < deadline, "the API did not load the new model"
        time.sleep(0.3)
    expected = client.post("/predict", json={"text": text}).json()
    open_page(page, "#/")
    page.fill("#text", text)
    page.press("#text", "Control+Enter")
    page.locator("#entities .doc mark.ent").first.wait_for()
    marks = page.locator("#entities .doc mark.ent")
    shown = {
        (m.get_attribute("data-label"), m.evaluate("n => n.firstChild.textContent"))
        for m in marks.all()
    }
    assert shown == {(e["label"], e["text"]) for e in expected["entities"]}
    assert shown == {("PER", "Angela Merkel"), ("LOC", "Paris")}
    assert page.inner_text(".model-version") == expected["model_version"]
    assert set(page.locator("#entities .legend li").all_inner_texts()) == {"LOC", "PER"}
    tip = marks.first.get_attribute("data-tip")
    assert tip.startswith("PER · score 0.")  # the score, on hover and on focus
    check_page(page, "try-it")


def test_models_side_by_side_and_promote_with_confirmation(page, client) -> None:
    job2 = client.get(f"/jobs/{state['job2']}").json()
    deadline = time.monotonic() + 120
    while job2["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, job2
        time.sleep(0.3)
        job2 = client.get(f"/jobs/{state['job2']}").json()
    assert job2["status"] == "succeeded", job2
    v1, v2 = state["v1"], job2["model_version"]
    state["v2"] = v2
    assert client.get(f"/models/{v2}").json()["stage"] == "candidate"  # weaker: not promoted

    open_page(page, "#/models")
    rows = page.locator("table.models tbody tr")
    rows.first.wait_for()
    assert rows.count() == 2
    assert "production" in page.inner_text(f"tr[data-version='{v1}']")
    header = page.locator("table.models thead").inner_text()
    assert "F1 PER" in header and "base model" in header
    check_page(page, "models")

    dialogs: list[str] = []

    def dismiss_then_accept(dialog) -> None:
        dialogs.append(dialog.message)
        (dialog.dismiss if len(dialogs) == 1 else dialog.accept)()

    page.on("dialog", dismiss_then_accept)
    page.click(f"tr[data-version='{v2}'] button.promote")  # dismissed: nothing happens
    page.wait_for_timeout(300)
    assert client.get(f"/models/{v2}").json()["stage"] == "candidate"
    page.click(f"tr[data-version='{v2}'] button.promote")
    page.locator("#message", has_text="now in production").wait_for()
    page.remove_listener("dialog", dismiss_then_accept)
    assert len(dialogs) == 2 and v2 in dialogs[0]
    assert client.get(f"/models/{v2}").json()["stage"] == "production"
    page.locator(f"tr[data-version='{v2}'] .stage-production").wait_for()


def test_model_page_shows_the_confusion_matrix_and_filterable_errors(page, client) -> None:
    v2 = state["v2"]
    analysis = client.get(f"/models/{v2}/evaluation").json()
    assert analysis["examples"], "a one-epoch tiny model makes mistakes"
    assert client.get("/models/no-such-version/evaluation").status_code == 404
    open_page(page, f"#/models/{v2}")
    heat = page.locator("#analysis table.heatmap")
    heat.wait_for()
    columns = heat.locator("thead th").all_inner_texts()[1:]
    assert columns == analysis["confusion"]["columns"]
    cells = [int(x) for x in heat.locator("tbody td").all_inner_texts()]
    assert cells == [n for row in analysis["confusion"]["matrix"] for n in row]

    examples = page.locator("#analysis li.example")
    assert examples.count() == min(len(analysis["examples"]), 50)  # 50 a page, then "more"
    first = analysis["examples"][0]
    shown = examples.first
    # Both rows (gold, predicted) read as the sentence itself once the label tags are left out.
    plain = (
        "n => [...n.childNodes].map(c => c.nodeType === 3 ? c.data : c.firstChild.data).join('')"
    )
    assert [r.evaluate(plain) for r in shown.locator(".ents").all()] == [first["text"]] * 2
    focus = shown.locator("mark.ent.focus")  # the span the error is about, outlined
    wrong = first["gold_span"] or first["predicted_span"]
    assert focus.first.evaluate("n => n.firstChild.data") == wrong["text"]

    kind = first["kind"]
    page.select_option("#analysis select[name=kind]", kind)
    kinds = {e.get_attribute("data-kind") for e in examples.all()}
    assert kinds == {kind}
    assert examples.count() == min(50, sum(e["kind"] == kind for e in analysis["examples"]))
    page.select_option("#analysis select[name=kind]", "")
    check_page(page, "model-errors")
    # The README's picture (docs/screenshots/model-page.png is a copy): the first screen.
    page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(path=str(SCREENSHOTS / "readme-model-page.png"))

    # A model without a stored analysis still shows its page and says so.
    page.route(
        "**/evaluation",
        lambda route: route.fulfill(status=404, json={"detail": "no error analysis"}),
    )
    open_page(page, f"#/models/{state['v1']}")
    page.locator("#analysis", has_text="no stored error analysis").wait_for()
    page.unroute("**/evaluation")


def test_a_running_training_is_cancelled_from_its_page(page, client) -> None:
    dataset_id = client.get(f"/jobs/{state['job2']}").json()["dataset_id"]
    # patience 1000: early stopping would end it within a poll on a tiny dataset.
    r = client.post("/jobs/train", json={"dataset_id": dataset_id, "epochs": 200, "patience": 1000})
    job_id = r.json()["id"]
    open_page(page, f"#/jobs/{job_id}")
    page.locator("main .status-running").wait_for(timeout=60_000)
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#cancel-job")
    page.locator("main .status-cancelled").wait_for(timeout=30_000)
    assert client.get(f"/jobs/{job_id}").json()["status"] == "cancelled"


def test_the_html_report_renders_offline(page, client, tmp_path) -> None:
    from shared.ner.report import render_report

    v2 = state["v2"]
    analysis = client.get(f"/models/{v2}/evaluation").json()
    metrics = client.get(f"/models/{v2}").json()["metrics"]
    report = tmp_path / "report.html"
    report.write_text(render_report(analysis, metrics, f"Errors of {v2}"))
    page.goto(report.as_uri())
    page.locator("table.heatmap").wait_for()
    assert page.locator("li.example").count() == min(50, len(analysis["examples"]))
    assert serious_violations(page) == []
    page.screenshot(path=str(SCREENSHOTS / "report-desktop.png"), full_page=True)


def test_bulk_file_to_downloads(page, client, tmp_path) -> None:
    docs = tmp_path / "docs.csv"
    with docs.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text"])
        w.writerow(["a", "Angela Merkel lives in Paris ."])
        w.writerow(["b", 'Omar works for Hooli in Lima , "he said" .'])
        w.writerow(["c", "nothing here"])
    open_page(page, "#/bulk")
    page.set_input_files("#bulk-file", str(docs))
    page.click("#bulk-submit")
    page.locator("#bulk-status [data-status=succeeded]").wait_for(timeout=60_000)
    check_page(page, "bulk")

    with page.expect_download() as info:
        page.click("#download-jsonl")
    lines = Path(info.value.path()).read_text().splitlines()
    results = [json.loads(line) for line in lines]
    assert [r["id"] for r in results] == ["a", "b", "c"]
    texts = ["Angela Merkel lives in Paris .", 'Omar works for Hooli in Lima , "he said" .']
    for r, text in zip(results, texts, strict=False):
        assert r["entities"] and all(
            text[e["start"] : e["end"]] == e["text"] for e in r["entities"]
        )

    with page.expect_download() as info:
        page.click("#download-csv")
    rows = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text())))
    assert {r["document_id"] for r in rows} <= {"a", "b", "c"}
    assert sum(len(r["entities"]) for r in results) == len(rows)
    assert {"document_id", "start", "end", "label", "text", "score"} == set(rows[0])

    # A JSONL file with a broken line: the API's refusal is listed with its line.
    bad = tmp_path / "docs.jsonl"
    bad.write_text('{"id": "x", "text": "fine"}\n{"id": "y"}\n')
    page.set_input_files("#bulk-file", str(bad))
    page.click("#bulk-submit")
    page.locator("#bulk-status .error-box li", has_text="line 2").wait_for()
