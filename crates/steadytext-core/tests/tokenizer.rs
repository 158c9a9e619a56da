//! The tokenizer built from the GGUF metadata and the chat template.

mod common;

use steadytext_core::Backend;

#[test]
fn chat_markers_are_single_special_tokens_and_text_round_trips() {
    let backend = common::backend();
    let tok = backend.tokenizer().unwrap();
    assert_eq!(tok.vocab_size(), 49152);
    assert_eq!(tok.special().eos.0, 2);
    let ids = tok.encode("<|im_start|>user\nHi<|im_end|>").unwrap();
    assert_eq!(ids.first(), Some(&1));
    assert!(ids.contains(&2));
    for text in [
        "Hello, world!",
        "Ünïcödé — 日本語 emoji 🎉 and  double  spaces\ttabs\n",
        "price: $2,500.00 (12 digits: 123456789012)",
    ] {
        let ids = tok.encode(text).unwrap();
        assert_eq!(tok.decode(&ids).unwrap(), text);
    }
    // digits are single tokens in SmolLM2
    assert_eq!(tok.encode("2024").unwrap().len(), 4);
}

#[test]
fn chat_template_renders_chatml_from_the_gguf() {
    let backend = common::backend();
    let rendered = backend.render_chat("Hi there").unwrap();
    assert!(
        rendered.contains("<|im_start|>user\nHi there<|im_end|>\n"),
        "{rendered}"
    );
    assert!(rendered.ends_with("<|im_start|>assistant\n"), "{rendered}");
}
