module github.com/contactsdav/contactsdav

go 1.26.0

require (
	github.com/emersion/go-webdav v0.7.0
	golang.org/x/oauth2 v0.37.0
)
