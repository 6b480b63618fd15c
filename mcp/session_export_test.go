package mcp

// SessionStateSizes reports what g keeps keyed by session: the upstream
// subscriptions held, the sessions holding subscriptions, and the log
// levels set.
func (g *Gateway) SessionStateSizes() (subscriptions, subscribers, logLevels int) {
	subscriptions, subscribers = g.subs.size()
	return subscriptions, subscribers, g.logLevels.size()
}

// SessionCounts reports how many sessions g's Sessions hold in use and
// ended.
func (g *Gateway) SessionCounts() (live, ended int) { return g.o.Sessions.counts() }

// TransportHolds reports whether mcp-go still holds session id (it can
// send it a notification).
func (g *Gateway) TransportHolds(id string) bool {
	return g.mcpServer.SendNotificationToSpecificClient(id, "notifications/resources/list_changed", nil) == nil
}
