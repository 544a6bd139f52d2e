package vcardmap_test

import (
	"fmt"
	"strings"

	"github.com/contactsdav/contactsdav/vcardmap"
)

func Example() {
	card := "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:42\r\nFN:Jane Doe\r\nN:Doe;Jane;;;\r\n" +
		"item1.EMAIL;type=INTERNET;type=pref:jane@example.com\r\nitem1.X-ABLabel:_$!<Other>!$_\r\n" +
		"X-SOCIALPROFILE;type=twitter:https://twitter.com/jane\r\nEND:VCARD\r\n"
	m, err := vcardmap.Parse([]byte(card))
	if err != nil {
		panic(err)
	}
	fmt.Println(m.Contact.DisplayName, m.Contact.EmailAddresses[0].Address, m.UID)

	// What the backend does on GET: Graph's contact plus the stored extras.
	m.Contact.EmailAddresses[0].Address = "jane@new.example" // edited in Outlook
	out, _ := vcardmap.Render(m, "3.0")
	fmt.Print(strings.ReplaceAll(string(out), "\r\n", "\n")) // CRLF on the wire
	// Output:
	// Jane Doe jane@example.com 42
	// BEGIN:VCARD
	// VERSION:3.0
	// PRODID:-//contactsdav//vcardmap//EN
	// UID:42
	// FN:Jane Doe
	// N:Doe;Jane;;;
	// EMAIL;TYPE=INTERNET:jane@new.example
	// X-SOCIALPROFILE;type=twitter:https://twitter.com/jane
	// END:VCARD
}
