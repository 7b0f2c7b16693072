// The polyglot journey in TypeScript: every step of tests/polyglot/conftest.py's
// check_journey, against the services' gRPC ports, with stubs generated from protos/ by
// clients/typescript/buf.gen.yaml. Prints the JSON report as its last line of stdout.
// Reads SUPERAPP_{IDENTITY,WALLET,CATALOGUE}_ADDR (host:port), SUPERAPP_NATS_URL,
// SUPERAPP_ADMIN_EMAIL/_PASSWORD and SUPERAPP_TOP_UP_MINOR/_TRANSFER_MINOR; from the
// repository root (README, "Generating a client in another language"):
//
//   node_modules/.bin/buf generate --template clients/typescript/buf.gen.yaml
//   node_modules/.bin/tsx clients/typescript/journey.ts

import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";

import { type CallOptions, Code, ConnectError, createClient } from "@connectrpc/connect";

import {
  CatalogueService,
} from "../../.cache/clients/typescript/gen/superapp/catalogue/v1/catalogue_service_pb.js";
import {
  IdentityService,
} from "../../.cache/clients/typescript/gen/superapp/identity/v1/identity_service_pb.js";
import {
  WalletService,
} from "../../.cache/clients/typescript/gen/superapp/wallet/v1/wallet_service_pb.js";
import { connectGrpc, type GrpcConnection } from "./grpc_connection.js";
import { USER_REGISTERED_SUBJECT, findUserRegistered } from "./identity_events.js";
import { type RpcError, codeName, describeRpcError, expectRpcError } from "./rpc_error.js";
import { settingsFromEnvironment } from "./settings.js";
import {
  type LocalRefusal,
  type ValidationCount,
  refusedLocally,
  validateRequests,
} from "./validation.js";

const CALL_TIMEOUT_MS = 10_000;
// How long a wallet may take to open from identity's UserRegistered event.
const WALLET_OPEN_TIMEOUT_MS = 30_000;
const EVENT_TIMEOUT_MS = 30_000;
const CURRENCY = "EUR";
const PASSWORD = "polyglot journey password";

// The keys check_journey in tests/polyglot/conftest.py reads (its docstring says what each
// one means), plus what protovalidate did with the requests before they were sent
// (check_local_validation there).
interface JourneyReport {
  user_id: string;
  email: string;
  login_user_id: string;
  read_email: string | null;
  payee_id: string;
  balance_after_top_up_minor: number;
  balance_after_transfer_minor: number;
  search_results: number;
  error: RpcError;
  event: { subject: string; user_id: string; email: string };
  validated: boolean;
  validated_requests: number;
  refused_locally: LocalRefusal;
  refused_requests: number;
}

function authorized(accessToken: string): CallOptions {
  return { timeoutMs: CALL_TIMEOUT_MS, headers: { authorization: `Bearer ${accessToken}` } };
}

const PUBLIC: CallOptions = { timeoutMs: CALL_TIMEOUT_MS };

// Wallets open asynchronously, so a wallet call may answer NOT_FOUND WALLET_NOT_FOUND for
// a moment. `call` must resend the same request (same request_id): it takes effect once.
async function untilWalletsOpen<T>(call: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + WALLET_OPEN_TIMEOUT_MS;
  for (let delayMs = 50; ; delayMs = Math.min(delayMs * 2, 1_000)) {
    try {
      return await call();
    } catch (error) {
      const walletMissing =
        error instanceof ConnectError &&
        error.code === Code.NotFound &&
        describeRpcError(error).reason === "WALLET_NOT_FOUND";
      if (!walletMissing || Date.now() + delayMs > deadline) {
        throw error;
      }
    }
    await sleep(delayMs);
  }
}

async function journey(
  connections: GrpcConnection[],
  validation: ValidationCount,
): Promise<JourneyReport> {
  const settings = settingsFromEnvironment();
  const checked = [validateRequests(validation)];
  const identityConnection = connectGrpc(settings.identityUrl, checked);
  const walletConnection = connectGrpc(settings.walletUrl, checked);
  const catalogueConnection = connectGrpc(settings.catalogueUrl, checked);
  connections.push(identityConnection, walletConnection, catalogueConnection);
  const identity = createClient(IdentityService, identityConnection.transport);
  const wallet = createClient(WalletService, walletConnection.transport);
  const catalogue = createClient(CatalogueService, catalogueConnection.transport);

  const register = async (
    email: string,
    password: string,
    displayName: string,
  ): Promise<string> => {
    const request = { email, password, displayName, requestId: randomUUID() };
    const { user } = await identity.registerUser(request, PUBLIC);
    if (user === undefined) {
      throw new Error(`RegisterUser of ${email} answered no user`);
    }
    return user.userId;
  };
  const login = async (
    email: string,
    password: string,
  ): Promise<{ userId: string; accessToken: string }> => {
    const { user, tokens } = await identity.login({ email, password }, PUBLIC);
    if (user === undefined || tokens === undefined) {
      throw new Error(`Login of ${email} answered no user or tokens`);
    }
    return { userId: user.userId, accessToken: tokens.accessToken };
  };
  // Available EUR in minor units: an int64 (bigint here), a JSON number in the report.
  const balance = async (userId: string, accessToken: string): Promise<number> => {
    const response = await wallet.getWallet({ userId }, authorized(accessToken));
    const eur = response.wallet?.balances.find((b) => b.currencyCode === CURRENCY);
    const minor = eur?.availableMinor ?? 0n;
    if (minor > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new Error(`balance ${minor} of ${userId} is beyond a JSON number's exact range`);
    }
    return Number(minor);
  };

  // The bootstrap admin gets role admin when it signs up; a second run against the same
  // stack finds it signed up already.
  try {
    await register(settings.adminEmail, settings.adminPassword, "Polyglot admin");
  } catch (error) {
    const taken = error instanceof ConnectError && describeRpcError(error).reason === "EMAIL_TAKEN";
    if (!taken) {
      throw error;
    }
  }
  const run = randomUUID();
  const email = `ts-payer-${run}@example.com`;
  const userId = await register(email, PASSWORD, "TypeScript payer");
  const payeeId = await register(`ts-payee-${run}@example.com`, PASSWORD, "TypeScript payee");
  const payer = await login(email, PASSWORD);
  const { user: read } = await identity.getUser({ userId }, authorized(payer.accessToken));

  const admin = await login(settings.adminEmail, settings.adminPassword);
  const topUp = {
    userId,
    amount: { currencyCode: CURRENCY, amountMinor: settings.topUpMinor },
    description: "polyglot journey top-up",
    requestId: randomUUID(),
  };
  await untilWalletsOpen(() => wallet.creditWallet(topUp, authorized(admin.accessToken)));
  const balanceAfterTopUp = await balance(userId, payer.accessToken);

  const transfer = {
    fromUserId: userId,
    toUserId: payeeId,
    amount: { currencyCode: CURRENCY, amountMinor: settings.transferMinor },
    description: "polyglot journey transfer",
    requestId: randomUUID(),
  };
  await untilWalletsOpen(() => wallet.createTransfer(transfer, authorized(payer.accessToken)));
  // A transfer of nothing breaks the contract's rule on `amount` (its CEL rule
  // `amount_minor.positive`): refused here, never sent, so the balance read next is the
  // one the transfer above left.
  const nothing = { ...transfer, amount: { currencyCode: CURRENCY, amountMinor: 0n } };
  const refused = await refusedLocally("CreateTransfer", () =>
    wallet.createTransfer({ ...nothing, requestId: randomUUID() }, authorized(payer.accessToken)),
  );
  const balanceAfterTransfer = await balance(userId, payer.accessToken);

  const search = await catalogue.searchProducts({ query: "polyglot" }, PUBLIC);

  // An address's syntax is the server's to judge (the contract's rules on `email` are
  // presence and length), so this one passes the client's checks and the server refuses it.
  const malformed = {
    email: "not an email address",
    password: PASSWORD,
    displayName: "Malformed",
    requestId: randomUUID(),
  };
  const error = await expectRpcError(identity.registerUser(malformed, PUBLIC));

  const event = await findUserRegistered(settings.natsUrl, userId, EVENT_TIMEOUT_MS);

  return {
    user_id: userId,
    email,
    login_user_id: payer.userId,
    read_email: read?.email ?? null,
    payee_id: payeeId,
    balance_after_top_up_minor: balanceAfterTopUp,
    balance_after_transfer_minor: balanceAfterTransfer,
    search_results: search.results.length,
    error,
    event: { subject: USER_REGISTERED_SUBJECT, user_id: event.userId, email: event.email },
    validated: validation.requests > 0,
    validated_requests: validation.requests,
    refused_locally: refused,
    refused_requests: validation.refused,
  };
}

async function main(): Promise<void> {
  const connections: GrpcConnection[] = [];
  const validation: ValidationCount = { requests: 0, refused: 0 };
  try {
    const report = await journey(connections, validation);
    console.log(JSON.stringify(report));
  } catch (error) {
    const status = error instanceof ConnectError ? ` (${codeName(error.code)})` : "";
    console.error(`journey failed${status}:`, error);
    process.exitCode = 1;
  } finally {
    for (const connection of connections) {
      connection.close();
    }
  }
}

void main();
