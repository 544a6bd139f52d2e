package graphemu

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand"
	"strings"
	"time"
)

var (
	seedGiven   = []string{"Ada", "Björn", "Chloé", "Dmitri", "Emeka", "Fatima", "Gustavo", "Hana", "Ingrid", "José", "Kenji", "Lena", "Mateo", "Noor", "Olga", "Priya", "Quentin", "Rosa", "Sven", "Tariq", "Uma", "Viktor", "Wen", "Yusuf", "Zoë"}
	seedSurname = []string{"Abara", "Berg", "Castillo", "Dubois", "Eriksen", "Fujita", "García", "Haddad", "Ivanova", "Jensen", "Kowalski", "López", "Müller", "Nakamura", "O'Brien", "Petrov", "Quinn", "Rossi", "Schmidt", "Tanaka", "Ueda", "Varga", "Wójcik", "Yilmaz", "Zhang"}
	seedCompany = []string{"Contoso", "Fabrikam", "Northwind Traders", "Tailspin Toys", "Wingtip Toys", "Adventure Works", ""}
	seedTitle   = []string{"Engineer", "Sales Manager", "Designer", "Accountant", "CEO", "Nurse", ""}
	seedCity    = []string{"Seattle", "Oslo", "Lyon", "Kyoto", "Nairobi", "Lima", "Kraków"}
)

// Seed adds n realistic contacts, the same for the same n, to the default
// folder of upn (creating the mailbox), some with photos, and nested folders
// "Family" ⊃ "Cousins" and "Work", each holding a few contacts. It seeds a
// mailbox once: later calls, also after a restart on the same DataDir, do
// nothing, so a user's edits and deletions of seeded data stick.
func (e *Emulator) Seed(upn string, n int) error {
	mb, err := e.mailbox(upn, true)
	if err != nil {
		return err
	}
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if mb.meta.Seeded {
		return nil
	}
	mb.meta.Seeded = true
	rnd := rand.New(rand.NewSource(int64(n)))
	var ops []op
	now := time.Now().UTC()
	add := func(folderID string, i int) {
		seq := mb.next()
		ct := &contact{ID: newImmutableID(), RegID: newItemID(), Folder: folderID, Props: map[string]json.RawMessage{}, Created: now, Modified: now,
			Seq: seq, Entered: seq, CreatedSeq: seq, ChangeKey: mb.changeKey(seq), Ext: map[string]extProp{}}
		g, s := seedGiven[rnd.Intn(len(seedGiven))], seedSurname[rnd.Intn(len(seedSurname))]
		set := func(k string, v any) { ct.Props[k] = mustJSON(v) }
		set("givenName", g)
		set("surname", s)
		set("displayName", g+" "+s)
		set("fileAs", s+", "+g)
		local := asciiLocal(fmt.Sprintf("%s.%s%d", g, s, i))
		set("emailAddresses", []emailOut{{Name: ptr(g + " " + s), Address: ptr(local + "@example.com")}})
		set("mobilePhone", fmt.Sprintf("+1 555 %04d", rnd.Intn(10000)))
		if co := seedCompany[rnd.Intn(len(seedCompany))]; co != "" {
			set("companyName", co)
			set("businessPhones", []string{fmt.Sprintf("+1 425 555 %04d", rnd.Intn(10000))})
			if t := seedTitle[rnd.Intn(len(seedTitle))]; t != "" {
				set("jobTitle", t)
			}
		}
		if rnd.Intn(3) == 0 {
			ct.Props["homeAddress"] = marshalAddress(map[string]string{"street": fmt.Sprintf("%d Main Street", 1+rnd.Intn(400)),
				"city": seedCity[rnd.Intn(len(seedCity))], "postalCode": fmt.Sprintf("%05d", rnd.Intn(100000))})
		}
		if rnd.Intn(4) == 0 {
			set("birthday", fmt.Sprintf("%04d-%02d-%02dT11:59:00Z", 1950+rnd.Intn(50), 1+rnd.Intn(12), 1+rnd.Intn(28)))
		}
		if rnd.Intn(5) == 0 {
			set("personalNotes", "Met at the "+seedCity[rnd.Intn(len(seedCity))]+" conference.")
		}
		if i%7 == 3 {
			data := seedPhoto(i)
			ct.Photo = &photoMeta{ContentType: "image/jpeg", Size: len(data), Width: 16, Height: 16, ETag: fmt.Sprintf(`"%08X"`, seq)}
			ct.Ext[strings.ToLower(hasPhotoProp)] = extProp{ID: hasPhotoProp, Value: "true"}
			mb.photos[ct.ID] = data
			ops = append(ops, op{bucket: bPhotos, key: []byte(ct.ID), val: data})
		}
		mb.put(ct)
		ops = append(ops, putJSON(bContacts, ct.ID, ct))
	}
	for i := 0; i < n; i++ {
		add(mb.meta.DefaultID, i)
		if e.distListEvery > 0 && (i+1)%e.distListEvery == 0 {
			seq := mb.next()
			dl := &contact{ID: newImmutableID(), RegID: newItemID(), Folder: mb.meta.DefaultID, DistList: true,
				Props:   map[string]json.RawMessage{"displayName": mustJSON(fmt.Sprintf("Group %d", i/e.distListEvery+1))},
				Created: now, Modified: now, Seq: seq, Entered: seq, CreatedSeq: seq, ChangeKey: mb.changeKey(seq)}
			mb.put(dl)
			ops = append(ops, putJSON(bContacts, dl.ID, dl))
		}
	}
	{ // the nested folders
		mk := func(name, parent string) string {
			seq := mb.next()
			f := &folder{ID: newItemID(), DisplayName: name, Parent: parent, Seq: seq, Entered: seq, CreatedSeq: seq, Modified: now}
			mb.folders[f.ID] = f
			ops = append(ops, putJSON(bFolders, f.ID, f))
			return f.ID
		}
		family := mk("Family", mb.meta.DefaultID)
		cousins := mk("Cousins", family)
		work := mk("Work", mb.meta.DefaultID)
		for i, fid := range []string{family, family, family, cousins, cousins, work, work, work} {
			add(fid, n+i)
		}
	}
	return e.st.save(mb, ops...)
}

func ptr(s string) *string { return &s }

// seedPhoto is a small deterministic JPEG.
func seedPhoto(i int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for y := 0; y < 16; y++ {
		for x := 0; x < 16; x++ {
			img.Set(x, y, color.RGBA{uint8(i * 37), uint8(x * 16), uint8(y * 16), 255})
		}
	}
	var b bytes.Buffer
	_ = jpeg.Encode(&b, img, &jpeg.Options{Quality: 60})
	return b.Bytes()
}

// asciiLocal folds a name into an ASCII mailbox local part.
func asciiLocal(s string) string {
	fold := strings.NewReplacer("ö", "o", "é", "e", "á", "a", "í", "i", "ó", "o", "ë", "e", "ü", "u", "ł", "l", "ć", "c")
	var b strings.Builder
	for _, r := range fold.Replace(strings.ToLower(s)) {
		if r == '.' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
	}
	return b.String()
}
