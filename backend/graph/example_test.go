package graph_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"

	"golang.org/x/oauth2"

	"github.com/contactsdav/contactsdav/backend/graph"
)

func ExampleNewPatch() {
	old := &graph.Contact{DisplayName: "Ada Lovelace", GivenName: "Ada", Surname: "Lovelace",
		BusinessPhones: []string{"+44 1"}}
	next := &graph.Contact{DisplayName: "Ada Lovelace", GivenName: "Ada", JobTitle: "Programmer"}
	b, _ := json.Marshal(graph.NewPatch(old, next))
	fmt.Println(string(b))
	// Output: {"businessPhones":[],"displayName":"Ada Lovelace","jobTitle":"Programmer","surname":null}
}

func ExampleClient_ContactsDelta() {
	c, err := graph.New(graph.Options{
		Mailbox:     "ada@contoso.example",
		TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "…"}),
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	// The first round lists everything; keep DeltaLink for the next one.
	r, err := c.ContactsDelta(ctx, graph.DefaultFolderID, "", graph.Query{Select: []string{"id"}})
	if err != nil {
		log.Fatal(err)
	}
	// Fetch the changed contacts whole, with extended properties, 20 a batch.
	ids := make([]string, len(r.Changed))
	for i, ct := range r.Changed {
		ids[i] = ct.ID
	}
	full, err := c.GetContacts(ctx, ids, graph.Query{Expand: []string{graph.PropHasPicture}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(full), len(r.Removed), r.DeltaLink != "")
}
