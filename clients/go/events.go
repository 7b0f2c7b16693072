package main

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	eventsv1 "superapp-platform/gen/superapp/events/v1"
	identityv1 "superapp-platform/gen/superapp/identity/v1"
)

// identityStream is the JetStream stream identity publishes to (events.proto's file comment).
const identityStream = "SUPERAPP_IDENTITY"

// eventReport is the UserRegistered the journey read back from JetStream.
type eventReport struct {
	Subject string `json:"subject"`
	UserID  string `json:"user_id"`
	Email   string `json:"email"`
}

// subjectOf is the NATS subject an event message is published on: the
// `superapp.events.v1.subject` message option, read from the generated descriptor.
func subjectOf(message protoreflect.ProtoMessage) (string, error) {
	options := message.ProtoReflect().Descriptor().Options()
	subject, _ := proto.GetExtension(options, eventsv1.E_Subject).(string)
	if subject == "" {
		return "", fmt.Errorf("%s has no superapp.events.v1.subject option",
			message.ProtoReflect().Descriptor().FullName())
	}
	return subject, nil
}

// awaitUserRegistered reads the stream from its start (an ephemeral ordered consumer, so
// nothing is left behind on the server) until the UserRegistered of userID arrives.
func awaitUserRegistered(ctx context.Context, url, userID string) (*eventReport, error) {
	subject, err := subjectOf(&identityv1.UserRegistered{})
	if err != nil {
		return nil, err
	}
	eventType := string((&identityv1.UserRegistered{}).ProtoReflect().Descriptor().FullName())
	connection, err := nats.Connect(url, nats.Name("superapp-go-journey"))
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", url, err)
	}
	defer connection.Close()
	jetStream, err := connection.JetStream()
	if err != nil {
		return nil, err
	}
	subscription, err := jetStream.SubscribeSync(
		subject, nats.BindStream(identityStream), nats.OrderedConsumer(), nats.DeliverAll(),
	)
	if err != nil {
		return nil, fmt.Errorf("subscribe to %s on %s: %w", subject, identityStream, err)
	}
	defer subscription.Unsubscribe()
	for {
		deadline, _ := ctx.Deadline()
		message, err := subscription.NextMsg(time.Until(deadline))
		if err != nil {
			return nil, fmt.Errorf("no UserRegistered of %s on %s: %w", userID, subject, err)
		}
		if got := message.Header.Get("ce-type"); got != eventType {
			return nil, fmt.Errorf("%s carried ce-type %q, not %q", subject, got, eventType)
		}
		event := &identityv1.UserRegistered{}
		if err := proto.Unmarshal(message.Data, event); err != nil {
			return nil, fmt.Errorf("decode %s: %w", eventType, err)
		}
		log.Printf("event %s of %s", message.Header.Get("ce-id"), event.GetUserId())
		if event.GetUserId() == userID {
			return &eventReport{Subject: subject, UserID: event.GetUserId(), Email: event.GetEmail()}, nil
		}
	}
}
