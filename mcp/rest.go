package mcp

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/gatewaystack/gatewaystack/config"
	"github.com/gatewaystack/gatewaystack/upstream"
)

// newRESTCaller builds a REST upstream: static headers (upstream and per
// tool) with ${VAR} expanded by expand, tools converted from the
// configuration.
func newRESTCaller(u config.Upstream, hc *http.Client, o BuildOptions, expand func(field string, in map[string]string) (map[string]string, error)) (upstream.Caller, error) {
	headers, err := expand("rest.headers", u.REST.Headers)
	if err != nil {
		return nil, err
	}
	tools := make([]upstream.RESTTool, len(u.REST.Tools))
	for i, t := range u.REST.Tools {
		th, err := expand(fmt.Sprintf("rest.tools[%d].headers", i), t.Headers)
		if err != nil {
			return nil, err
		}
		var schema json.RawMessage
		if t.InputSchema != nil {
			if schema, err = json.Marshal(t.InputSchema); err != nil {
				return nil, fmt.Errorf("upstreams[%s].rest.tools[%d].input_schema: %w", u.Name, i, err)
			}
		}
		tools[i] = upstream.RESTTool{
			Name: t.Name, Title: t.Title, Description: t.Description, InputSchema: schema,
			Method: t.Method, Path: t.Path, Query: t.Query, Body: t.Body, Headers: th,
		}
	}
	c, err := upstream.NewRESTClient(upstream.RESTOptions{
		Name: u.Name, BaseURL: u.REST.BaseURL, Headers: headers, InjectQuery: u.REST.InjectQuery,
		Tools: tools, HTTPClient: hc, Timeout: u.Timeout, Logger: o.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("upstreams[%s]: %w", u.Name, err)
	}
	return c, nil
}
