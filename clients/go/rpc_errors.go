package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	rpccode "google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// errorReport is a failed call as check_journey reads it: decoded from the
// `grpc-status-details-bin` trailer (a google.rpc.Status).
type errorReport struct {
	Code   string   `json:"code"`
	Reason string   `json:"reason"`
	Domain string   `json:"domain"`
	Fields []string `json:"fields"`
}

// decodeError reads the status code's canonical name (google.rpc.Code: "INVALID_ARGUMENT",
// where codes.Code.String() says "InvalidArgument"), the ErrorInfo and the BadRequest
// field violations of a failed call.
func decodeError(err error) (*errorReport, error) {
	st, ok := status.FromError(err)
	if !ok {
		return nil, fmt.Errorf("not a gRPC status: %w", err)
	}
	decoded := &errorReport{Code: rpccode.Code(st.Code()).String(), Fields: []string{}}
	for _, detail := range st.Details() {
		switch d := detail.(type) {
		case *errdetails.ErrorInfo:
			decoded.Reason, decoded.Domain = d.GetReason(), d.GetDomain()
		case *errdetails.BadRequest:
			for _, violation := range d.GetFieldViolations() {
				decoded.Fields = append(decoded.Fields, violation.GetField())
			}
		case error:
			// Details() answers an error for an Any whose type is not linked in.
			return nil, fmt.Errorf("undecodable status detail: %w", d)
		}
	}
	if decoded.Reason == "" {
		return nil, fmt.Errorf("%s carries no ErrorInfo: %w", decoded.Code, err)
	}
	return decoded, nil
}

// codeOf is the status code of a call's error, also once wrapped with %w: grpc 1.33's
// status.Code does not look through wrapping.
func codeOf(err error) codes.Code {
	var rpcError interface{ GRPCStatus() *status.Status }
	if errors.As(err, &rpcError) {
		return rpcError.GRPCStatus().Code()
	}
	return status.Code(err)
}

// retry calls attempt until it succeeds, fails with a code not in retryable, or ctx ends.
// The caller's attempt reuses its request (and so its request_id): the services make a
// retried mutation take effect once. A RetryInfo detail sets the wait.
func retry(ctx context.Context, what string, retryable []codes.Code, attempt func() error) error {
	wait := 100 * time.Millisecond
	for tries := 1; ; tries++ {
		err := attempt()
		if err == nil {
			return nil
		}
		if !contains(retryable, codeOf(err)) {
			return fmt.Errorf("%s: %w", what, err)
		}
		delay := wait
		if hint := retryDelay(err); hint > 0 {
			delay = hint
		}
		log.Printf("%s: %s (try %d), again in %s", what, codeOf(err), tries, delay)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: gave up after %d tries: %w", what, tries, err)
		case <-time.After(delay):
		}
		if wait < time.Second {
			wait *= 2
		}
	}
}

func retryDelay(err error) time.Duration {
	for _, detail := range status.Convert(err).Details() {
		if info, ok := detail.(*errdetails.RetryInfo); ok {
			return info.GetRetryDelay().AsDuration()
		}
	}
	return 0
}

func contains(set []codes.Code, code codes.Code) bool {
	for _, member := range set {
		if member == code {
			return true
		}
	}
	return false
}
