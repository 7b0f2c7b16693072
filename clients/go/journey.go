// Command journey drives the live stack from Go stubs generated from protos/ alone: the
// journey of tests/polyglot/conftest.py (check_journey), reported as one JSON line on stdout.
//
// It reads the stack's addresses from SUPERAPP_IDENTITY_ADDR, SUPERAPP_WALLET_ADDR,
// SUPERAPP_CATALOGUE_ADDR and SUPERAPP_NATS_URL, the bootstrap admin from
// SUPERAPP_ADMIN_EMAIL and SUPERAPP_ADMIN_PASSWORD, and the amounts from
// SUPERAPP_TOP_UP_MINOR and SUPERAPP_TRANSFER_MINOR. Progress goes to stderr.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	cataloguev1 "superapp-platform/gen/superapp/catalogue/v1"
	identityv1 "superapp-platform/gen/superapp/identity/v1"
	typev1 "superapp-platform/gen/superapp/type/v1"
	walletv1 "superapp-platform/gen/superapp/wallet/v1"
)

// The whole journey must end well inside the test's own timeout (120 s).
const journeyTimeout = 90 * time.Second

const (
	currency = "EUR"
	password = "correct horse battery staple"
)

// report is what check_journey reads: the keys are its contract.
type report struct {
	UserID                    string       `json:"user_id"`
	Email                     string       `json:"email"`
	LoginUserID               string       `json:"login_user_id"`
	ReadEmail                 string       `json:"read_email"`
	PayeeID                   string       `json:"payee_id"`
	BalanceAfterTopUpMinor    int64        `json:"balance_after_top_up_minor"`
	BalanceAfterTransferMinor int64        `json:"balance_after_transfer_minor"`
	SearchResults             int          `json:"search_results"`
	Error                     *errorReport `json:"error"`
	Event                     *eventReport `json:"event"`
}

type settings struct {
	identityAddr, walletAddr, catalogueAddr, natsURL string
	adminEmail, adminPassword                        string
	topUpMinor, transferMinor                        int64
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("journey: ")
	config, err := readSettings()
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), journeyTimeout)
	defer cancel()
	result, err := run(ctx, config)
	if err != nil {
		log.Fatal(err)
	}
	line, err := json.Marshal(result)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(line))
}

func readSettings() (settings, error) {
	var missing []string
	text := func(name string) string {
		value := os.Getenv(name)
		if value == "" {
			missing = append(missing, name)
		}
		return value
	}
	config := settings{
		identityAddr:  text("SUPERAPP_IDENTITY_ADDR"),
		walletAddr:    text("SUPERAPP_WALLET_ADDR"),
		catalogueAddr: text("SUPERAPP_CATALOGUE_ADDR"),
		natsURL:       text("SUPERAPP_NATS_URL"),
		adminEmail:    text("SUPERAPP_ADMIN_EMAIL"),
		adminPassword: text("SUPERAPP_ADMIN_PASSWORD"),
	}
	topUp, transfer := text("SUPERAPP_TOP_UP_MINOR"), text("SUPERAPP_TRANSFER_MINOR")
	if len(missing) > 0 {
		return config, fmt.Errorf("environment variables not set: %v", missing)
	}
	var err error
	if config.topUpMinor, err = strconv.ParseInt(topUp, 10, 64); err != nil {
		return config, fmt.Errorf("SUPERAPP_TOP_UP_MINOR: %w", err)
	}
	if config.transferMinor, err = strconv.ParseInt(transfer, 10, 64); err != nil {
		return config, fmt.Errorf("SUPERAPP_TRANSFER_MINOR: %w", err)
	}
	return config, nil
}

func run(ctx context.Context, config settings) (*report, error) {
	// grpc 1.33 (Debian's) predates credentials/insecure: WithInsecure is its plaintext option.
	dial := func(addr string) (*grpc.ClientConn, error) {
		return grpc.DialContext(ctx, addr, grpc.WithInsecure())
	}
	identityConn, err := dial(config.identityAddr)
	if err != nil {
		return nil, err
	}
	defer identityConn.Close()
	walletConn, err := dial(config.walletAddr)
	if err != nil {
		return nil, err
	}
	defer walletConn.Close()
	catalogueConn, err := dial(config.catalogueAddr)
	if err != nil {
		return nil, err
	}
	defer catalogueConn.Close()
	identity := identityv1.NewIdentityServiceClient(identityConn)
	wallet := walletv1.NewWalletServiceClient(walletConn)
	catalogue := cataloguev1.NewCatalogueServiceClient(catalogueConn)

	// The stack's bootstrap admin gets its role at sign-up; it may exist already.
	if _, err := register(ctx, identity, config.adminEmail, config.adminPassword); err != nil &&
		codeOf(err) != codes.AlreadyExists {
		return nil, fmt.Errorf("register admin: %w", err)
	}
	suffix := randomHex(6)
	out := &report{Email: "go-payer-" + suffix + "@example.com"}
	payer, err := register(ctx, identity, out.Email, password)
	if err != nil {
		return nil, fmt.Errorf("register payer: %w", err)
	}
	out.UserID = payer.GetUserId()
	payee, err := register(ctx, identity, "go-payee-"+suffix+"@example.com", password)
	if err != nil {
		return nil, fmt.Errorf("register payee: %w", err)
	}
	out.PayeeID = payee.GetUserId()
	log.Printf("registered payer %s and payee %s", out.UserID, out.PayeeID)

	payerLogin, err := login(ctx, identity, out.Email, password)
	if err != nil {
		return nil, fmt.Errorf("login payer: %w", err)
	}
	out.LoginUserID = payerLogin.GetUser().GetUserId()
	asPayer := bearer(ctx, payerLogin.GetTokens().GetAccessToken())
	read, err := identity.GetUser(asPayer, &identityv1.GetUserRequest{UserId: out.UserID})
	if err != nil {
		return nil, fmt.Errorf("get user: %w", err)
	}
	out.ReadEmail = read.GetUser().GetEmail()

	adminLogin, err := login(ctx, identity, config.adminEmail, config.adminPassword)
	if err != nil {
		return nil, fmt.Errorf("login admin: %w", err)
	}
	asAdmin := bearer(ctx, adminLogin.GetTokens().GetAccessToken())
	// The wallet opens when wallet consumes identity's UserRegistered: until then NOT_FOUND.
	// The retry keeps its request_id, so a credit that did land is not made twice.
	credit := &walletv1.CreditWalletRequest{
		UserId:      out.UserID,
		Amount:      &typev1.Money{CurrencyCode: currency, AmountMinor: config.topUpMinor},
		Description: "Go journey top-up",
		RequestId:   "go-top-up-" + randomHex(8),
	}
	if err := retry(ctx, "CreditWallet", []codes.Code{codes.NotFound}, func() error {
		_, err := wallet.CreditWallet(asAdmin, credit)
		return err
	}); err != nil {
		return nil, err
	}
	if out.BalanceAfterTopUpMinor, err = balance(asPayer, wallet, out.UserID); err != nil {
		return nil, err
	}

	// The payee's wallet opens from its own event, so the transfer may meet NOT_FOUND too.
	transfer := &walletv1.CreateTransferRequest{
		FromUserId:  out.UserID,
		ToUserId:    out.PayeeID,
		Amount:      &typev1.Money{CurrencyCode: currency, AmountMinor: config.transferMinor},
		Description: "Go journey transfer",
		RequestId:   "go-transfer-" + randomHex(8),
	}
	if err := retry(ctx, "CreateTransfer", []codes.Code{codes.NotFound}, func() error {
		_, err := wallet.CreateTransfer(asPayer, transfer)
		return err
	}); err != nil {
		return nil, err
	}
	if out.BalanceAfterTransferMinor, err = balance(asPayer, wallet, out.UserID); err != nil {
		return nil, err
	}

	found, err := catalogue.SearchProducts(ctx, &cataloguev1.SearchProductsRequest{Query: "mug", PageSize: 10})
	if err != nil {
		return nil, fmt.Errorf("search products: %w", err)
	}
	out.SearchResults = len(found.GetResults())

	_, err = identity.RegisterUser(ctx, &identityv1.RegisterUserRequest{
		Email:       "not an email",
		Password:    password,
		DisplayName: "Malformed",
		RequestId:   "go-malformed-" + randomHex(8),
	})
	if err == nil {
		return nil, fmt.Errorf("RegisterUser with a malformed email succeeded")
	}
	if out.Error, err = decodeError(err); err != nil {
		return nil, err
	}

	if out.Event, err = awaitUserRegistered(ctx, config.natsURL, out.UserID); err != nil {
		return nil, err
	}
	return out, nil
}

// register signs a user up, retrying RESOURCE_EXHAUSTED (identity's password-hashing
// budget on a busy machine) with the same request_id.
func register(
	ctx context.Context, identity identityv1.IdentityServiceClient, email, secret string,
) (*identityv1.User, error) {
	request := &identityv1.RegisterUserRequest{
		Email:       email,
		Password:    secret,
		DisplayName: "Go journey",
		RequestId:   "go-register-" + randomHex(8),
	}
	var user *identityv1.User
	err := retry(ctx, "RegisterUser", []codes.Code{codes.ResourceExhausted}, func() error {
		response, err := identity.RegisterUser(ctx, request)
		user = response.GetUser()
		return err
	})
	return user, err
}

func login(
	ctx context.Context, identity identityv1.IdentityServiceClient, email, secret string,
) (*identityv1.LoginResponse, error) {
	var response *identityv1.LoginResponse
	err := retry(ctx, "Login", []codes.Code{codes.ResourceExhausted}, func() error {
		var err error
		response, err = identity.Login(ctx, &identityv1.LoginRequest{Email: email, Password: secret})
		return err
	})
	return response, err
}

// balance is the user's available EUR, as GetWallet answers it.
func balance(ctx context.Context, wallet walletv1.WalletServiceClient, userID string) (int64, error) {
	response, err := wallet.GetWallet(ctx, &walletv1.GetWalletRequest{UserId: userID})
	if err != nil {
		return 0, fmt.Errorf("get wallet: %w", err)
	}
	for _, b := range response.GetWallet().GetBalances() {
		if b.GetCurrencyCode() == currency {
			return b.GetAvailableMinor(), nil
		}
	}
	return 0, nil
}

func bearer(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

func randomHex(bytes int) string {
	buffer := make([]byte, bytes)
	if _, err := rand.Read(buffer); err != nil {
		log.Fatal(err)
	}
	return hex.EncodeToString(buffer)
}
