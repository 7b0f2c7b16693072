"""Mini-app scenarios: the review pipeline on a ~1 MiB bundle of realistic JavaScript.

The review runs off the request path and is CPU-bound, so each operation is one
`review_bundle` call measured in the bench process by the CPU time of its thread
(`time.thread_time`): a busy machine stretches wall time on its own. The p50 and p99
columns are that CPU time.
"""

from __future__ import annotations

import io
import json
import random
import time
import zipfile

from scripts.benchmark.environment import Environment
from scripts.benchmark.repeated import Repeated
from scripts.benchmark.scenario import Scenario, Target
from services.miniapps.review import review_bundle
from services.miniapps.review.limits import MiB

__all__ = ["miniapps_scenarios", "realistic_bundle"]

_MODULE = """
export class Cart{index} {{
  constructor(shop) {{
    this.shop = shop;
    this.items = new Map();
    this.listeners = [];
  }}

  add(product, quantity = 1) {{
    const line = this.items.get(product.id) ?? {{ product, quantity: 0 }};
    line.quantity += quantity;
    this.items.set(product.id, line);
    this.listeners.forEach((listener) => listener(this.total()));
  }}

  total() {{
    let sum = 0;
    for (const {{ product, quantity }} of this.items.values()) {{
      sum += product.price * quantity;
    }}
    return Math.round(sum * 100) / 100;
  }}

  async checkout() {{
    const user = await superapp.auth.getProfile();
    const response = await fetch(`${{API}}/shops/${{this.shop}}/orders`, {{
      method: "POST",
      headers: {{ "content-type": "application/json" }},
      body: JSON.stringify({{ user: user.id, items: [...this.items.values()] }}),
    }});
    if (!response.ok) {{
      superapp.ui.toast(`Checkout failed: ${{response.status}}`);
      return null;
    }}
    setTimeout(() => this.items.clear(), 0);
    return superapp.pay.request(await response.json());
  }}
}}

export function render{index}(cart, root) {{
  const list = document.createElement("ul");
  for (const [id, line] of cart.items) {{
    const item = document.createElement("li");
    item.dataset.id = String(id);
    item.textContent = `${{line.product.name}} x ${{line.quantity}}`;
    list.append(item);
  }}
  root.replaceChildren(list);
  return fetch("https://img.cdn.example.com/banner-{index}.png");
}}
"""


_SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "nu",
    "pe",
    "ra",
    "si",
    "to",
    "vu",
    "we",
    "xa",
    "yo",
    "ze",
    "bi",
    "co",
    "da",
    "fe",
    "gu",
    "hi",
    "ja",
]


def _catalogue(index: int, chooser: random.Random) -> str:
    """Product data that differs from module to module, as real code and data do."""

    def word() -> str:
        return "".join(chooser.choices(_SYLLABLES, k=chooser.randint(2, 4)))

    rows = ",\n".join(
        f'  {{ id: {chooser.randrange(10**6)}, name: "{word().title()} {word()}", '
        f'price: {chooser.randrange(100, 99999) / 100}, tags: ["{word()}", "{word()}"] }}'
        for _ in range(12)
    )
    return f"export const PRODUCTS_{index} = [\n{rows}\n];\n"


def realistic_bundle(target_bytes: int = MiB) -> bytes:
    """A bundle that passes review with about `target_bytes` of JavaScript in app.js."""
    chooser = random.Random(1)  # noqa: S311 -- repeatable bench data, not a secret
    parts = ['const API = "https://api.example.com";\n']
    size = len(parts[0])
    index = 0
    while size < target_bytes:
        parts.append(_MODULE.format(index=index) + _catalogue(index, chooser))
        size += len(parts[-1])
        index += 1
    manifest = {
        "name": "Bench Shop",
        "version": "1.0.0",
        "entry": "index.html",
        "permissions": [{"name": "wallet.pay", "justification": "Pay for your order."}],
        "network_domains": ["api.example.com", "*.cdn.example.com"],
    }
    html = '<!doctype html><html><body><script type="module" src="app.js"></script></body></html>'
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(manifest, indent=2))
        archive.writestr("index.html", html)
        archive.writestr("app.js", "".join(parts))
    return buffer.getvalue()


async def _reviews(_env: Environment) -> Repeated:
    bundle = realistic_bundle()

    async def cpu_of_one_review() -> float:
        before = time.thread_time()
        report = review_bundle(bundle)
        used = time.thread_time() - before
        if not report.passed:
            raise RuntimeError(f"the bench bundle was refused: {report.findings[:3]}")
        return used

    return Repeated(cpu_of_one_review)


def miniapps_scenarios() -> list[Scenario]:
    """The review of a 1 MiB bundle."""
    return [
        Scenario(
            "miniapps.review 1 MiB bundle",
            _reviews,
            target=Target(
                "p99",
                at_most=2000,
                source="off the request path: the developer waits seconds, not minutes",
            ),
        )
    ]
