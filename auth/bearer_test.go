package auth

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestBearerToken(t *testing.T) {
	t.Parallel()
	const tok = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln"
	tests := []struct {
		name    string
		headers []string // Authorization values, in order
		query   string
		want    string // the token; empty when an error is expected
		status  int
		code    string
		reason  string
	}{
		{name: "a Bearer token is returned", headers: []string{"Bearer " + tok}, want: tok},
		{name: "the scheme is case-insensitive: bearer", headers: []string{"bearer " + tok}, want: tok},
		{name: "the scheme is case-insensitive: BEARER", headers: []string{"BEARER " + tok}, want: tok},
		{name: "extra spaces between scheme and token are tolerated", headers: []string{"Bearer    " + tok}, want: tok},
		{name: "a trailing tab is tolerated", headers: []string{"Bearer " + tok + "\t"}, want: tok},
		{name: "surrounding spaces are tolerated", headers: []string{"  Bearer " + tok + "  "}, want: tok},
		{name: "an unrelated query parameter is fine", headers: []string{"Bearer " + tok}, query: "x=1", want: tok},
		{name: "no header is missing credentials, without an error code",
			status: 401, code: "", reason: ReasonCredentialsMissing},
		{name: "an empty header is an unsupported scheme, without an error code", headers: []string{""},
			status: 401, code: "", reason: ReasonSchemeUnsupported},
		{name: "the Basic scheme is unsupported, without an error code", headers: []string{"Basic YWxpY2U6cHc="},
			status: 401, code: "", reason: ReasonSchemeUnsupported},
		{name: "a scheme that merely starts with Bearer is unsupported", headers: []string{"Bearerx " + tok},
			status: 401, code: "", reason: ReasonSchemeUnsupported},
		{name: "a token without a scheme is unsupported", headers: []string{tok},
			status: 401, code: "", reason: ReasonSchemeUnsupported},
		{name: "Bearer with an empty token is malformed", headers: []string{"Bearer"},
			status: 401, code: CodeInvalidToken, reason: ReasonTokenMalformed},
		{name: "Bearer and spaces only is malformed", headers: []string{"Bearer    "},
			status: 401, code: CodeInvalidToken, reason: ReasonTokenMalformed},
		{name: "a token with an inner space is malformed", headers: []string{"Bearer abc def"},
			status: 401, code: CodeInvalidToken, reason: ReasonTokenMalformed},
		{name: "a token with a tab is malformed", headers: []string{"Bearer abc\tdef"},
			status: 401, code: CodeInvalidToken, reason: ReasonTokenMalformed},
		{name: "trailing base64 padding is part of a b64token", headers: []string{"Bearer abc=="}, want: "abc=="},
		{name: "the RFC 6750 b64token characters are accepted", headers: []string{"Bearer aZ09-._~+/="}, want: "aZ09-._~+/="},
		{name: "a tab right after the scheme makes another scheme", headers: []string{"Bearer\t" + tok},
			status: 401, code: "", reason: ReasonSchemeUnsupported},
		{name: "a tab between the spaces and the token is malformed", headers: []string{"Bearer \t" + tok},
			status: 401, code: CodeInvalidToken, reason: ReasonTokenMalformed},
		{name: "a second credential after a comma is malformed", headers: []string{"Bearer abc, Bearer def"},
			status: 401, code: CodeInvalidToken, reason: ReasonTokenMalformed},
		{name: "a JWS JSON serialization is malformed", headers: []string{`Bearer {"payload":"e30","signatures":[]}`},
			status: 401, code: CodeInvalidToken, reason: ReasonTokenMalformed},
		{name: "padding only is malformed", headers: []string{"Bearer =="},
			status: 401, code: CodeInvalidToken, reason: ReasonTokenMalformed},
		{name: "padding inside the token is malformed", headers: []string{"Bearer ab=c"},
			status: 401, code: CodeInvalidToken, reason: ReasonTokenMalformed},
		{name: "a quoted token is malformed", headers: []string{`Bearer "abc"`},
			status: 401, code: CodeInvalidToken, reason: ReasonTokenMalformed},
		{name: "a non-ASCII byte is malformed", headers: []string{"Bearer abc\u00e9"},
			status: 401, code: CodeInvalidToken, reason: ReasonTokenMalformed},
		{name: "a NUL byte is malformed", headers: []string{"Bearer abc\x00"},
			status: 401, code: CodeInvalidToken, reason: ReasonTokenMalformed},
		{name: "a header at the size limit is accepted", headers: []string{"Bearer " + strings.Repeat("a", MaxAuthorizationHeaderBytes-len("Bearer "))},
			want: strings.Repeat("a", MaxAuthorizationHeaderBytes-len("Bearer "))},
		{name: "an oversized header is refused before it is split", headers: []string{"Bearer " + strings.Repeat("a", MaxAuthorizationHeaderBytes)},
			status: 401, code: CodeInvalidToken, reason: ReasonTokenTooLarge},
		{name: "two Authorization headers are an invalid request", headers: []string{"Bearer " + tok, "Bearer " + tok},
			status: 400, code: CodeInvalidRequest, reason: ReasonCredentialsDuplicate},
		{name: "two headers of different schemes are an invalid request", headers: []string{"Basic YQ==", "Bearer " + tok},
			status: 400, code: CodeInvalidRequest, reason: ReasonCredentialsDuplicate},
		{name: "a header plus an access_token query parameter is an invalid request", headers: []string{"Bearer " + tok}, query: "access_token=" + tok,
			status: 400, code: CodeInvalidRequest, reason: ReasonCredentialsDuplicate},
		{name: "a header plus an empty access_token parameter is an invalid request", headers: []string{"Bearer " + tok}, query: "access_token=",
			status: 400, code: CodeInvalidRequest, reason: ReasonCredentialsDuplicate},
		{name: "a token only in the query is never used: missing credentials", query: "access_token=" + tok,
			status: 401, code: "", reason: ReasonTokenInQuery},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			target := "http://127.0.0.1:8080/mcp"
			if tt.query != "" {
				target += "?" + tt.query
			}
			r := httptest.NewRequest(http.MethodPost, target, nil)
			for _, h := range tt.headers {
				r.Header.Add("Authorization", h)
			}
			got, aerr := BearerToken(r)
			if tt.want != "" {
				if aerr != nil {
					t.Fatalf("BearerToken: %v", aerr)
				}
				if got != tt.want {
					t.Errorf("token = %q, want %q", got, tt.want)
				}
				return
			}
			if got != "" {
				t.Errorf("a refused request yielded token %q", got)
			}
			if aerr == nil {
				t.Fatal("want an error, got none")
			}
			authError(t, aerr, tt.status, tt.code, tt.reason)
		})
	}
}

// The wire decides what the gateway sees: header names in any letter case
// are one header, and two of them are two credentials.
func TestBearerTokenOverTheWire(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, aerr := BearerToken(r)
		if aerr != nil {
			fmt.Fprintf(w, "%d %s %s", aerr.Status, aerr.Code, aerr.Reason)
			return
		}
		fmt.Fprintf(w, "token %s", tok)
	}))
	t.Cleanup(srv.Close)
	tests := []struct {
		name    string
		target  string
		headers string
		want    string
	}{
		{"a lower-case header name is the Authorization header", "/mcp", "authorization: Bearer abc\r\n", "token abc"},
		{"two headers differing only in case are a duplicate", "/mcp", "authorization: Bearer abc\r\nAUTHORIZATION: Bearer def\r\n",
			"400 invalid_request credentials_duplicate"},
		{"a header plus a query token is a duplicate", "/mcp?access_token=abc", "Authorization: Bearer abc\r\n",
			"400 invalid_request credentials_duplicate"},
		{"a query token alone is not used", "/mcp?access_token=abc", "", "401  token_in_query"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sConnection: close\r\n\r\n", tt.target, tt.headers)
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body := make([]byte, 256)
			n, _ := resp.Body.Read(body)
			if got := string(body[:n]); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer  abc ", "Basic x", "Bearer", "", "Bearer a b", "BEARER\tabc"} {
		f.Add(s, "")
	}
	f.Add("Bearer abc", "access_token=x")
	f.Fuzz(func(t *testing.T, header, query string) {
		r := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/mcp", nil)
		r.URL.RawQuery = query
		r.Header.Set("Authorization", header)
		tok, aerr := BearerToken(r)
		if aerr != nil {
			if tok != "" {
				t.Fatalf("token %q returned with error %v", tok, aerr)
			}
			if aerr.Status != 400 && aerr.Status != 401 {
				t.Fatalf("status %d", aerr.Status)
			}
			return
		}
		if tok == "" || strings.ContainsAny(tok, " \t") || !strings.Contains(header, tok) {
			t.Fatalf("header %q gave token %q", header, tok)
		}
		if r.URL.Query().Has("access_token") {
			t.Fatalf("a token was accepted alongside access_token in %q", query)
		}
	})
}
