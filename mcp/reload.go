package mcp

import (
	"github.com/gatewaystack/gatewaystack/config"
)

// ReloadPolicy applies the policy section (tools, prompts, resources) of a
// newly loaded configuration to the running gateway. The whole configuration
// is validated first: on any problem nothing changes and the problems are
// returned (a config.Problems), so a bad new policy never replaces a good
// one. Each table is swapped atomically; a request decides under either the
// old or the new table, never a mix of one table's rules. Other sections are
// not reloaded (they need a restart); the step-up and baseline scopes stay
// those the gateway started with, as its challenges do.
func (s *Server) ReloadPolicy(next *config.Config) error {
	if err := next.Validate(); err != nil {
		return err
	}
	o := &s.Gateway.o
	o.Policy.Tools.Replace(NewAuthorizer(next.Policy.Tools, s.cfg))
	o.Policy.Prompts.Replace(NewAuthorizer(next.Policy.Prompts, s.cfg))
	o.Policy.Resources.Replace(NewAuthorizer(next.Policy.Resources, s.cfg))
	s.Gateway.SetPolicyVersion(PolicyVersion(next.Policy))
	return nil
}

// Config is the configuration the server was built with; read-only.
func (s *Server) Config() *config.Config { return s.cfg }
