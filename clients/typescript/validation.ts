// Every request is checked against its protovalidate (buf.validate) rules, the contract's
// limits in protos/, before it is sent: a request the contract forbids fails here, with
// protovalidate's ValidationError naming each broken rule, instead of costing a round
// trip. The services check the same rules (and answer INVALID_ARGUMENT with a
// BadRequest); some limits are theirs alone (an email address's syntax, a password's
// length after NFKC, a field mask's paths), so a request that passes here can still be
// refused there.

import { pathToString } from "@bufbuild/protobuf/reflect";
import { ConnectError, type Interceptor } from "@connectrpc/connect";
import { ValidationError, createValidator } from "@bufbuild/protovalidate";

export interface ValidationCount {
  // Requests that passed their rules and were sent.
  requests: number;
  // Requests that broke a rule and were not sent.
  refused: number;
}

export function validateRequests(count: ValidationCount): Interceptor {
  const validator = createValidator();
  return (next) => async (request) => {
    if (request.stream) {
      throw new Error(`${request.method.name}: streaming requests are not validated here`);
    }
    const result = validator.validate(request.method.input, request.message);
    if (result.kind === "invalid") {
      count.refused += 1;
      throw result.error;
    }
    if (result.kind === "error") {
      throw new Error(`${request.method.name}: the rules could not be evaluated`, {
        cause: result.error,
      });
    }
    count.requests += 1;
    return next(request);
  };
}

// What a request refused before it was sent broke: the first violation's field path
// (`amount`, `roles[1]`) and rule id (`string.pattern`, or the id of one of the
// contract's own CEL rules such as `amount_minor.positive`).
export interface LocalRefusal {
  method: string;
  field: string;
  rule_id: string;
  violations: number;
}

// Runs `call`, which must be refused by the interceptor above: a call that was sent
// (answered or failed by the server) fails the journey.
export async function refusedLocally(
  method: string,
  call: () => Promise<unknown>,
): Promise<LocalRefusal> {
  try {
    await call();
  } catch (thrown) {
    // Connect wraps what an interceptor throws in a ConnectError (code unknown), the
    // interceptor's error as its cause; a server's answer has no ValidationError in it.
    const error = thrown instanceof ConnectError ? thrown.cause : thrown;
    if (error instanceof ValidationError) {
      const [first] = error.violations;
      if (first === undefined) {
        throw new Error(`${method}: refused with no violation`);
      }
      return {
        method,
        field: pathToString(first.field),
        rule_id: first.ruleId,
        violations: error.violations.length,
      };
    }
    throw new Error(`${method} was sent although it breaks the contract's rules`, {
      cause: thrown,
    });
  }
  throw new Error(`${method} was sent and accepted although it breaks the contract's rules`);
}
