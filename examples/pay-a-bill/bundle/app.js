// Pay a bill: the sample mini-app. It talks to the shell only through `superapp.*`'s
// public namespaces, and to the network only at the host its manifest declares
// (bills.example.com, its own backend), with literal URLs the review can read.
const BACKEND = "https://bills.example.com";

async function signIn() {
  // The shell shows the consent prompt for the manifest's permissions and hands the
  // one-time code to the backend's redirect URI; the backend redeems it.
  const { code, state } = await superapp.auth.authorize({
    scopes: ["profile.basic", "wallet.pay"],
  });
  const response = await fetch(`${BACKEND}/session`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ code, state }),
  });
  return response.json();
}

async function loadBills() {
  const response = await fetch(`${BACKEND}/bills`, { credentials: "include" });
  return response.json();
}

async function pay(bill) {
  // The backend creates a payment request; the shell asks the user to confirm it.
  const response = await fetch(`${BACKEND}/bills/${encodeURIComponent(bill.id)}/payment`, {
    method: "POST",
    credentials: "include",
  });
  const { payment_request_id } = await response.json();
  const outcome = await superapp.pay.confirm({ payment_request_id });
  document.getElementById("status").textContent = outcome.status;
}

function show(bills) {
  const list = document.getElementById("bills");
  for (const bill of bills) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.textContent = `${bill.payee}: ${bill.amount}`;
    button.addEventListener("click", () => pay(bill));
    item.appendChild(button);
    list.appendChild(item);
  }
}

async function main() {
  const started = performance.now();
  const session = await signIn();
  document.getElementById("greeting").textContent = `Hello, ${session.name}`;
  show(await loadBills());
  superapp.ui.ready({ loadTimeMs: performance.now() - started });
}

main().catch((error) => superapp.ui.toast(`Something went wrong: ${error.message}`));
