package llama

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/fluid-os/fluid/internal/gguf"
)

// Tokenizer is the SentencePiece (BPE) tokenizer of a llama GGUF file
// (tokenizer.ggml.model = "llama"), following llama.cpp's llm_tokenizer_spm:
// the text gets a leading space, spaces become "▁", the text is split into
// UTF-8 characters, and the adjacent pair whose concatenation is a token
// with the highest score is merged (leftmost on a tie) until none is;
// a character that is no token falls back to its <0xXX> byte tokens.
type Tokenizer struct {
	Tokens []string
	Scores []float32
	Types  []int32
	BOS    int
	EOS    int
	ids    map[string]int
	bytes  [256]int
}

const spaceMark = "▁"

// NewTokenizer reads tokenizer.ggml.* from f.
func NewTokenizer(f *gguf.File) (*Tokenizer, error) {
	model, err := getString(f, "tokenizer.ggml.model")
	if err != nil {
		return nil, err
	}
	if model != "llama" {
		return nil, fmt.Errorf("tokenizer.ggml.model is %q: only the SentencePiece \"llama\" tokenizer is supported", model)
	}
	t := &Tokenizer{ids: map[string]int{}}
	if t.Tokens, err = getArray[string](f, "tokenizer.ggml.tokens"); err != nil {
		return nil, err
	}
	if t.Scores, err = getArray[float32](f, "tokenizer.ggml.scores"); err != nil {
		return nil, err
	}
	if t.Types, err = getArray[int32](f, "tokenizer.ggml.token_type"); err != nil {
		return nil, err
	}
	n := len(t.Tokens)
	if len(t.Scores) != n || len(t.Types) != n {
		return nil, fmt.Errorf("tokenizer.ggml: %d tokens but %d scores and %d token types: they must agree", n, len(t.Scores), len(t.Types))
	}
	bos, err := getUint(f, "tokenizer.ggml.bos_token_id")
	if err != nil {
		return nil, err
	}
	eos, err := getUint(f, "tokenizer.ggml.eos_token_id")
	if err != nil {
		return nil, err
	}
	if bos >= uint64(n) || eos >= uint64(n) {
		return nil, fmt.Errorf("tokenizer.ggml.bos_token_id %d / eos_token_id %d: not below the vocabulary size %d", bos, eos, n)
	}
	t.BOS, t.EOS = int(bos), int(eos)
	for i := range t.bytes {
		t.bytes[i] = -1
	}
	for i, tok := range t.Tokens {
		if t.Types[i] == 6 { // byte token <0xXX>
			b, ok := byteValue(tok)
			if !ok {
				return nil, fmt.Errorf("tokenizer.ggml.tokens[%d] %q has the byte type but is not <0xXX>", i, tok)
			}
			t.bytes[b] = i
			continue
		}
		if _, dup := t.ids[tok]; !dup {
			t.ids[tok] = i
		}
	}
	return t, nil
}

// byteValue reads a byte token: exactly "<0x" two hex digits (either
// case) ">", as the C module's byte_value (modules/llama/tok.c) does.
func byteValue(tok string) (byte, bool) {
	if len(tok) != 6 || !strings.HasPrefix(tok, "<0x") || tok[5] != '>' {
		return 0, false
	}
	v, err := strconv.ParseUint(tok[3:5], 16, 8)
	if err != nil {
		return 0, false
	}
	return byte(v), true
}

// Encode tokenizes text; with bos the result starts with the BOS token.
func (t *Tokenizer) Encode(text string, bos bool) ([]int, error) {
	var out []int
	if bos {
		out = append(out, t.BOS)
	}
	if text == "" {
		return out, nil
	}
	s := spaceMark + strings.ReplaceAll(text, " ", spaceMark)
	// symbols as [start, end) into s
	type sym struct{ start, end int }
	var syms []sym
	for i := 0; i < len(s); {
		_, n := utf8.DecodeRuneInString(s[i:])
		syms = append(syms, sym{i, i + n})
		i += n
	}
	for {
		best, bestScore := -1, float32(0)
		for i := 0; i+1 < len(syms); i++ {
			id, ok := t.ids[s[syms[i].start:syms[i+1].end]]
			if ok && (best < 0 || t.Scores[id] > bestScore) {
				best, bestScore = i, t.Scores[id]
			}
		}
		if best < 0 {
			break
		}
		syms[best].end = syms[best+1].end
		syms = append(syms[:best+1], syms[best+2:]...)
	}
	for _, sy := range syms {
		piece := s[sy.start:sy.end]
		if id, ok := t.ids[piece]; ok {
			out = append(out, id)
			continue
		}
		for i := 0; i < len(piece); i++ {
			id := t.bytes[piece[i]]
			if id < 0 {
				return nil, fmt.Errorf("tokenize %q: byte %#02x has no token and no <0x%02X> byte token exists", text, piece[i], piece[i])
			}
			out = append(out, id)
		}
	}
	return out, nil
}

// Decode turns tokens back into text: "▁" becomes a space, byte tokens
// become their bytes, control tokens vanish, and the one leading space
// Encode adds is removed.
func (t *Tokenizer) Decode(ids []int) (string, error) {
	var b []byte
	for _, id := range ids {
		if id < 0 || id >= len(t.Tokens) {
			return "", fmt.Errorf("decode: token %d is outside the vocabulary of %d", id, len(t.Tokens))
		}
		switch t.Types[id] {
		case 3: // control
			continue
		case 6:
			for v, bid := range t.bytes {
				if bid == id {
					b = append(b, byte(v))
					break
				}
			}
			continue
		}
		b = append(b, strings.ReplaceAll(t.Tokens[id], spaceMark, " ")...)
	}
	s := string(b)
	return strings.TrimPrefix(s, " "), nil
}

func getString(f *gguf.File, key string) (string, error) {
	v, ok := f.Get(key)
	if !ok {
		return "", fmt.Errorf("metadata %s is missing", key)
	}
	s, ok := v.V.(string)
	if !ok {
		return "", fmt.Errorf("metadata %s is a %s, want a string", key, v.Type)
	}
	return s, nil
}

func getUint(f *gguf.File, key string) (uint64, error) {
	v, ok := f.Get(key)
	if !ok {
		return 0, fmt.Errorf("metadata %s is missing", key)
	}
	switch x := v.V.(type) {
	case uint32:
		return uint64(x), nil
	case uint64:
		return x, nil
	case int32:
		if x >= 0 {
			return uint64(x), nil
		}
	}
	return 0, fmt.Errorf("metadata %s is %s %v, want a non-negative integer", key, v.Type, v.V)
}

func getFloat(f *gguf.File, key string) (float32, error) {
	v, ok := f.Get(key)
	if !ok {
		return 0, fmt.Errorf("metadata %s is missing", key)
	}
	if x, ok := v.V.(float32); ok {
		return x, nil
	}
	return 0, fmt.Errorf("metadata %s is %s %v, want a float32", key, v.Type, v.V)
}

func getArray[T any](f *gguf.File, key string) ([]T, error) {
	v, ok := f.Get(key)
	if !ok {
		return nil, fmt.Errorf("metadata %s is missing", key)
	}
	a, ok := v.V.(gguf.Array)
	if ok {
		if xs, ok := a.Values.([]T); ok {
			return xs, nil
		}
	}
	var zero T
	return nil, fmt.Errorf("metadata %s is a %s, want an array of %T", key, v.Type, zero)
}
