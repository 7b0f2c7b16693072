#!/usr/bin/env node
// A Node.js gRPC client that knows our services only through protos/: the proof that a team
// in another language needs nothing but the .proto files (plus public, pinned npm packages).
//
// Usage:
//   node tests/polyglot/client.mjs [--protos DIR] [--deadline-ms N] TARGET STEP...
// Steps, run in order; each may be followed by `--expect CODE` (default OK):
//   --health SERVICE              grpc.health.v1.Health/Check; '' asks about the whole server
//   --call PKG.SERVICE/METHOD JSON  a unary call; the request as a JSON object
// Example:
//   node tests/polyglot/client.mjs 127.0.0.1:7103 --health '' \
//     --call superapp.catalogue.v1.CatalogueService/GetCategory '{"category_id": "x"}' \
//     --expect INVALID_ARGUMENT
//
// Prints one JSON object per step on stdout: code, code_name, details (the status message),
// response (null unless OK) and status_details, the `grpc-status-details-bin` trailer decoded
// as google.rpc.Status with each Any detail unpacked ({"@type": ..., fields...}).
// Exit status: 0 when every step ended with its expected code, 1 when one did not (or its
// details could not be decoded), 2 on bad arguments or unloadable protos.
//
// Field names are the .proto names (keepCase: true), in requests and in output, so what a
// reader sees in protos/ is what they type; int64 values are strings and enums their names,
// as in the proto3 JSON mapping; unset fields are printed with their defaults (an empty list
// is visible as []).

import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import googleProtoFiles from 'google-proto-files';

const require = createRequire(import.meta.url);
const DEFAULT_PROTOS = resolve(dirname(fileURLToPath(import.meta.url)), '../../protos');
// protos/ imports buf/validate/validate.proto (the options its request rules are written
// in), vendored beside it as buf's workspace has it (see buf.yaml).
const VENDORED_PROTOS = resolve(dirname(fileURLToPath(import.meta.url)), '../../third_party/protovalidate');
// grpc-health-check ships the canonical grpc/health/v1/health.proto; we use only that file.
const HEALTH_PROTO = join(
  dirname(require.resolve('grpc-health-check/package.json')),
  'proto/health/v1/health.proto',
);
const HEALTH_CHECK = 'grpc.health.v1.Health/Check';
const LOADER_OPTIONS = {
  keepCase: true,
  longs: String,
  enums: String,
  bytes: String,
  defaults: true,
  oneofs: true,
};
const TO_OBJECT = { longs: String, enums: String, bytes: String, defaults: true, oneofs: true };
const CODE_NAMES = Object.fromEntries(Object.entries(grpc.status).map(([name, n]) => [n, name]));

class UsageError extends Error {}

function parseArgs(argv) {
  const options = { protos: DEFAULT_PROTOS, deadlineMs: 10000, target: null, steps: [] };
  const take = (i, flag) => {
    if (i >= argv.length) throw new UsageError(`${flag} needs a value`);
    return argv[i];
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--protos') options.protos = resolve(take(++i, arg));
    else if (arg === '--deadline-ms') options.deadlineMs = Number(take(++i, arg));
    else if (arg === '--health') {
      options.steps.push({ method: HEALTH_CHECK, request: { service: take(++i, arg) } });
    } else if (arg === '--call') {
      const method = take(++i, arg);
      const body = take(++i, arg);
      let request;
      try {
        request = JSON.parse(body);
      } catch (error) {
        throw new UsageError(`--call ${method}: request is not JSON: ${error.message}`);
      }
      options.steps.push({ method, request });
    } else if (arg === '--expect') {
      const step = options.steps.at(-1);
      const code = take(++i, arg);
      if (!step) throw new UsageError('--expect must follow --health or --call');
      if (!(code in grpc.status)) throw new UsageError(`--expect: unknown status code ${code}`);
      step.expected = code;
    } else if (arg.startsWith('--')) throw new UsageError(`unknown option ${arg}`);
    else if (options.target === null) options.target = arg;
    else throw new UsageError(`unexpected argument ${arg}`);
  }
  if (options.target === null) throw new UsageError('TARGET (host:port) is required');
  if (options.steps.length === 0) throw new UsageError('give at least one --health or --call');
  if (!(options.deadlineMs > 0)) throw new UsageError('--deadline-ms must be positive');
  return options;
}

// Every .proto under protos/, relative to it, so imports resolve exactly as buf resolves them.
function protoFiles(root) {
  const files = readdirSync(root, { recursive: true })
    .filter((name) => name.endsWith('.proto'))
    .sort();
  if (files.length === 0) throw new UsageError(`no .proto files under ${root}`);
  return files;
}

function loadMethods(protosDir) {
  const definitions = {
    ...protoLoader.loadSync(protoFiles(protosDir), {
      ...LOADER_OPTIONS,
      includeDirs: [protosDir, VENDORED_PROTOS],
    }),
    ...protoLoader.loadSync(HEALTH_PROTO, LOADER_OPTIONS),
  };
  const methods = new Map();
  for (const [name, definition] of Object.entries(definitions)) {
    if (definition.format !== undefined) continue; // a message or enum, not a service
    for (const [methodName, method] of Object.entries(definition)) {
      methods.set(`${name}/${methodName}`, method);
    }
  }
  return methods;
}

// google-proto-files ships google/rpc/{status,error_details}.proto; protobufjs (which
// proto-loader builds on) ships only google/protobuf/*.
function loadRichStatus() {
  const root = googleProtoFiles.loadSync(
    [googleProtoFiles.getProtoPath('rpc/status.proto'),
      googleProtoFiles.getProtoPath('rpc/error_details.proto')],
    { keepCase: true },
  );
  return { root, status: root.lookupType('google.rpc.Status') };
}

function decodeStatusDetails(richStatus, trailer) {
  const status = richStatus.status.decode(trailer);
  const details = status.details.map((any) => {
    const typeName = any.type_url.slice(any.type_url.lastIndexOf('/') + 1);
    const type = richStatus.root.lookupType(typeName); // throws on a type we do not know
    return { '@type': any.type_url, ...type.toObject(type.decode(any.value), TO_OBJECT) };
  });
  return { code: status.code, message: status.message, details };
}

function call(client, method, request, deadlineMs) {
  return new Promise((resolvePromise) => {
    client.makeUnaryRequest(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      request,
      new grpc.Metadata(),
      { deadline: Date.now() + deadlineMs },
      (error, response) => resolvePromise({ error, response }),
    );
  });
}

async function runStep(client, methods, richStatus, step, deadlineMs) {
  const expected = step.expected ?? 'OK';
  const result = { method: step.method, request: step.request, expected };
  const method = methods.get(step.method);
  if (method === undefined) throw new UsageError(`no such method in the protos: ${step.method}`);
  if (method.requestStream || method.responseStream) {
    throw new UsageError(`${step.method} is a streaming method; only unary calls are supported`);
  }
  const { error, response } = await call(client, method, step.request, deadlineMs);
  result.code = error ? error.code : grpc.status.OK;
  result.code_name = CODE_NAMES[result.code] ?? String(result.code);
  result.details = error ? error.details : '';
  result.response = error ? null : response;
  result.status_details = null;
  let decoded = true;
  const trailer = error?.metadata?.get('grpc-status-details-bin') ?? [];
  if (trailer.length > 0) {
    try {
      result.status_details = decodeStatusDetails(richStatus, trailer[0]);
    } catch (decodeError) {
      result.status_details_error = String(decodeError);
      decoded = false;
    }
  }
  result.as_expected = decoded && result.code_name === expected;
  return result;
}

async function main() {
  let options;
  let methods;
  let richStatus;
  try {
    options = parseArgs(process.argv.slice(2));
    methods = loadMethods(options.protos);
    richStatus = loadRichStatus();
  } catch (error) {
    process.stderr.write(`client.mjs: ${error.message}\n`);
    return 2;
  }
  const client = new grpc.Client(options.target, grpc.credentials.createInsecure());
  let exitCode = 0;
  try {
    for (const step of options.steps) {
      const result = await runStep(client, methods, richStatus, step, options.deadlineMs);
      process.stdout.write(`${JSON.stringify(result)}\n`);
      if (!result.as_expected) exitCode = 1;
    }
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`client.mjs: ${error.message}\n`);
    exitCode = 2;
  } finally {
    client.close();
  }
  return exitCode;
}

process.exitCode = await main();
