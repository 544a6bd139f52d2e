package graph

// Cloud is a Microsoft national cloud: where people sign in and where Graph is.
type Cloud struct {
	Name      string
	LoginBase string // Entra ID authority host, e.g. https://login.microsoftonline.com
	GraphBase string // Graph v1.0 root, e.g. https://graph.microsoft.com/v1.0
}

// Clouds are the national clouds by name (learn.microsoft.com/graph/deployments).
// US GCC uses the global endpoints. China has no contact delta: the backend
// falls back to listing and diffing there.
var Clouds = map[string]Cloud{
	"global": {"global", "https://login.microsoftonline.com", "https://graph.microsoft.com/v1.0"},
	"usgov":  {"usgov", "https://login.microsoftonline.us", "https://graph.microsoft.us/v1.0"},
	"usdod":  {"usdod", "https://login.microsoftonline.us", "https://dod-graph.microsoft.us/v1.0"},
	"china":  {"china", "https://login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn/v1.0"},
}
