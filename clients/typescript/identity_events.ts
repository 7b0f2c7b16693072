// identity's UserRegistered events, read from its JetStream stream. The subject comes from
// the payload message's `superapp.events.v1.subject` option, so a renamed subject in
// protos/ reaches this reader through generation instead of a copied literal.

import { fromBinary, getOption } from "@bufbuild/protobuf";
import { connect } from "nats";

import { subject } from "../../.cache/clients/typescript/gen/superapp/events/v1/options_pb.js";
import {
  type UserRegistered,
  UserRegisteredSchema,
} from "../../.cache/clients/typescript/gen/superapp/identity/v1/events_pb.js";

// Named in events.proto's file comment: the stream identity publishes its events to.
const STREAM = "SUPERAPP_IDENTITY";

export const USER_REGISTERED_SUBJECT = getOption(UserRegisteredSchema, subject);

// The UserRegistered of `userId`, read from the start of the stream by an ordered
// (ephemeral, ack-less) consumer: a reader that changes no state needs no durable one.
export async function findUserRegistered(
  natsUrl: string,
  userId: string,
  timeoutMs: number,
): Promise<UserRegistered> {
  const connection = await connect({ servers: natsUrl, timeout: timeoutMs });
  try {
    const consumer = await connection
      .jetstream()
      .consumers.get(STREAM, { filterSubjects: USER_REGISTERED_SUBJECT });
    const messages = await consumer.consume();
    const timer = setTimeout(() => messages.stop(), timeoutMs);
    try {
      for await (const message of messages) {
        // Binary-mode CloudEvents: ce-type names the payload's proto message.
        const type = message.headers?.get("ce-type");
        if (type !== UserRegisteredSchema.typeName) {
          throw new Error(`${message.subject} carries ce-type ${type ?? "(none)"}`);
        }
        const event = fromBinary(UserRegisteredSchema, message.data);
        if (event.userId === userId) {
          return event;
        }
      }
    } finally {
      clearTimeout(timer);
      messages.stop();
    }
    throw new Error(`no ${UserRegisteredSchema.typeName} for ${userId} within ${timeoutMs} ms`);
  } finally {
    await connection.close();
  }
}
