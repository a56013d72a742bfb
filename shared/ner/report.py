"""`ner evaluate --errors report.html`: the error analysis as one self-contained HTML file.

The page's own renderer (`report_assets/analysis.js`, also served to the web page at
/static/analysis.js) is inlined with its stylesheet and the analysis JSON, so the report
opens from disk, offline, and shows the errors exactly as the web page does.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

ASSETS = Path(__file__).with_name("report_assets")


def _script_json(data: Any) -> str:
    # Inside <script>, "</" would end the element: escape "<" (and the JS line separators).
    return (
        json.dumps(data, ensure_ascii=False)
        .replace("<", "\\u003c")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def render_report(analysis: dict[str, Any], metrics: dict[str, Any], title: str) -> str:
    """The HTML report of `analysis` (`analysis.Analysis`) with the headline `metrics`."""
    script = (ASSETS / "analysis.js").read_text(encoding="utf-8")
    style = (ASSETS / "analysis.css").read_text(encoding="utf-8")
    headline = " · ".join(
        f"{name} {100 * float(metrics[key]):.1f}"
        for key, name in (
            ("f1", "F1"),
            ("precision", "precision"),
            ("recall", "recall"),
            ("f1_strict", "strict F1"),
        )
        if key in metrics
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>
body {{ font: 16px/1.5 system-ui, sans-serif; color: #111; margin: 0 auto; max-width: 1100px;
  padding: 1em; }}
select, input {{ font: inherit; }}
{style}
</style>
</head>
<body>
<main>
<h1>{html.escape(title)}</h1>
<p>{html.escape(headline)}</p>
<div id="analysis"><p>This report needs JavaScript to show the analysis.</p></div>
</main>
<script type="application/json" id="analysis-data">{_script_json(analysis)}</script>
<script type="module">
{script}
renderAnalysis(
  document.getElementById("analysis"),
  JSON.parse(document.getElementById("analysis-data").textContent),
);
</script>
</body>
</html>
"""
