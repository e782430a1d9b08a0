// Command read-secret reads the application's secrets from the secret-zero agent,
// once, at start-up. Go standard library only: net/http with a Unix-socket dialer.
//
//	SECRET_ZERO_SOCKET=/run/secret-zero/agent.sock go run . [KEY]
//
// It prints the names of the keys received, never their values (unless KEY is given).
// Exit codes, as `secret-zero get`: 10 refused (403), 11 no delivery left (410),
// 12 agent unreachable or not ready, 1 anything else.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"
)

const defaultSocket = "/run/secret-zero/agent.sock"

// agentError carries the exit code that goes with the failure.
type agentError struct {
	code    int
	message string
}

func (e *agentError) Error() string { return e.message }

// readSecrets makes the one GET /v1/secret and returns the document, kept in memory only.
func readSecrets(socket string) (map[string]json.RawMessage, error) {
	// Go spells the Linux abstract namespace "@NAME" too, so the address is used as is.
	address := socket
	client := &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", address)
			},
			DisableKeepAlives: true,
		},
	}
	resp, err := client.Get("http://localhost/v1/secret")
	if err != nil {
		return nil, &agentError{12, fmt.Sprintf("cannot reach the agent on %s: %v", socket, err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, &agentError{12, fmt.Sprintf("reading the answer from %s: %v", socket, err)}
	}
	defer wipe(body)
	if resp.StatusCode == http.StatusOK {
		var secrets map[string]json.RawMessage
		if err := json.Unmarshal(body, &secrets); err != nil {
			return nil, &agentError{1, "the document is not a JSON object"}
		}
		return secrets, nil
	}
	var detail struct {
		Error string `json:"error"`
		Hint  string `json:"hint"`
	}
	message := fmt.Sprintf("HTTP %d", resp.StatusCode)
	if json.Unmarshal(body, &detail) == nil && detail.Error != "" {
		message = detail.Error
		if detail.Hint != "" {
			message += " (hint: " + detail.Hint + ")"
		}
	}
	switch resp.StatusCode {
	case http.StatusForbidden:
		return nil, &agentError{10, "refused by the agent (403): " + message}
	case http.StatusGone:
		return nil, &agentError{11, "no delivery left (410): the secrets were already read: " + message}
	case http.StatusServiceUnavailable:
		return nil, &agentError{12, "the agent is not ready (503): " + message}
	default:
		return nil, &agentError{1, fmt.Sprintf("the agent answered HTTP %d: %s", resp.StatusCode, message)}
	}
}

func wipe(b []byte) {
	for i := range b {
		b[i] = 0
	}
}

func main() {
	os.Exit(run())
}

func run() int {
	socket := os.Getenv("SECRET_ZERO_SOCKET")
	if socket == "" {
		socket = defaultSocket
	}
	secrets, err := readSecrets(socket)
	if err != nil {
		fmt.Fprintf(os.Stderr, "read-secret (go): %v\n", err)
		if e, ok := err.(*agentError); ok {
			return e.code
		}
		return 1
	}
	keys := make([]string, 0, len(secrets))
	for k := range secrets {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Printf("read-secret (go): received %d keys: %s\n", len(keys), strings.Join(keys, ", "))
	if len(os.Args) > 1 {
		name := os.Args[1]
		raw, ok := secrets[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "read-secret (go): no key %q in the document\n", name)
			return 3
		}
		var text string
		if json.Unmarshal(raw, &text) != nil {
			text = string(raw)
		}
		fmt.Printf("%s=%s\n", name, text)
	}
	// ... start the application with secrets, never writing them to disk or the environment.
	return 0
}
