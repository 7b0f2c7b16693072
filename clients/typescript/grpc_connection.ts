// One plaintext HTTP/2 connection per service, speaking the gRPC protocol (not Connect's
// own), and closable: an idle HTTP/2 session would otherwise keep the process alive.

import type { Interceptor, Transport } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";

export interface GrpcConnection {
  transport: Transport;
  close(): void;
}

export function connectGrpc(baseUrl: string, interceptors: Interceptor[]): GrpcConnection {
  const sessionManager = new Http2SessionManager(baseUrl);
  return {
    transport: createGrpcTransport({ baseUrl, sessionManager, interceptors }),
    close: () => sessionManager.abort(),
  };
}
