package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gatewaystack/gatewaystack/demo"
)

// MintExpiresIn is the lifetime, in seconds, of tokens Mint asks for.
const MintExpiresIn = 3600

// Mint asks the demo issuer at issuer (its base URL) for an access token
// for subject sub with scope and, when set, the tenant org, valid for
// MintExpiresIn seconds, and returns the token.
func Mint(ctx context.Context, issuer, sub, scope, org string) (string, error) {
	body, err := json.Marshal(demo.MintRequest{Sub: sub, Scope: scope, OrgID: org, ExpiresIn: MintExpiresIn})
	if err != nil {
		return "", fmt.Errorf("encode mint request: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	endpoint := strings.TrimSuffix(issuer, "/") + demo.MintPath
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("mint: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("mint at %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("mint at %s: read response: %w", endpoint, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("mint at %s: HTTP %d: %s", endpoint, resp.StatusCode, snippet(data))
	}
	var mr demo.MintResponse
	if err := json.Unmarshal(data, &mr); err != nil || mr.AccessToken == "" {
		return "", fmt.Errorf("mint at %s: unexpected response: %s", endpoint, snippet(data))
	}
	return mr.AccessToken, nil
}
