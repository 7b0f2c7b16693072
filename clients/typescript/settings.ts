// What the journey is given: the stack's addresses and the bootstrap admin, from the
// environment (tests/polyglot/conftest.py sets them; README shows them for a local stack).

export interface Settings {
  identityUrl: string;
  walletUrl: string;
  catalogueUrl: string;
  natsUrl: string;
  adminEmail: string;
  adminPassword: string;
  topUpMinor: bigint;
  transferMinor: bigint;
}

function required(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === "") {
    throw new Error(`${name} is not set`);
  }
  return value;
}

// The services listen for plaintext HTTP/2 gRPC; the variables hold host:port.
function grpcUrl(name: string): string {
  return `http://${required(name)}`;
}

function minorUnits(name: string): bigint {
  const value = required(name);
  if (!/^[1-9][0-9]*$/.test(value)) {
    throw new Error(`${name} must be a positive whole number of minor units, not ${value}`);
  }
  return BigInt(value);
}

export function settingsFromEnvironment(): Settings {
  return {
    identityUrl: grpcUrl("SUPERAPP_IDENTITY_ADDR"),
    walletUrl: grpcUrl("SUPERAPP_WALLET_ADDR"),
    catalogueUrl: grpcUrl("SUPERAPP_CATALOGUE_ADDR"),
    natsUrl: required("SUPERAPP_NATS_URL"),
    adminEmail: required("SUPERAPP_ADMIN_EMAIL"),
    adminPassword: required("SUPERAPP_ADMIN_PASSWORD"),
    topUpMinor: minorUnits("SUPERAPP_TOP_UP_MINOR"),
    transferMinor: minorUnits("SUPERAPP_TRANSFER_MINOR"),
  };
}
