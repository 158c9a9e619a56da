//! Chat templates: the GGUF's `tokenizer.chat_template` rendered with minijinja, ChatML otherwise.

use minijinja::{context, Environment};

use crate::error::{Error, Result};

/// ChatML, the fallback when a model ships no template (SmolLM2's own template is ChatML too).
pub const CHATML_TEMPLATE: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/// No chat markup at all: the messages' text as it is (for base models, which continue text).
pub const RAW_TEMPLATE: &str = "{% for message in messages %}{{ message['content'] }}{% endfor %}";

/// A compiled chat template.
///
/// ```
/// use steadytext_core::ChatTemplate;
/// let t = ChatTemplate::chatml();
/// assert_eq!(
///     t.render_user("Hi").unwrap(),
///     "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
/// );
/// ```
pub struct ChatTemplate {
    env: Environment<'static>,
    source: String,
    bos_token: String,
    eos_token: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("source", &self.source)
            .finish()
    }
}

impl ChatTemplate {
    /// Compile a Jinja chat template (Hugging Face conventions: `messages`,
    /// `add_generation_prompt`, `bos_token`, `eos_token`; Python string methods are available).
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<Self> {
        let mut env = Environment::new();
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |msg: String| -> std::result::Result<String, minijinja::Error> {
                Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    msg,
                ))
            },
        );
        env.add_template_owned("chat", source.to_string())
            .map_err(|e| Error::Template(e.to_string()))?;
        Ok(Self {
            env,
            source: source.to_string(),
            bos_token: bos_token.to_string(),
            eos_token: eos_token.to_string(),
        })
    }

    /// The ChatML fallback template.
    pub fn chatml() -> Self {
        Self::new(CHATML_TEMPLATE, "", "<|im_end|>").expect("the built-in ChatML template compiles")
    }

    /// The raw template of base models ([`RAW_TEMPLATE`]): the prompt is the user's text.
    ///
    /// ```
    /// use steadytext_core::ChatTemplate;
    /// assert_eq!(ChatTemplate::raw().render_user("Hi").unwrap(), "Hi");
    /// ```
    pub fn raw() -> Self {
        Self::new(RAW_TEMPLATE, "", "").expect("the raw template compiles")
    }

    /// Render one user message followed by the assistant generation prompt.
    pub fn render_user(&self, user: &str) -> Result<String> {
        let tmpl = self
            .env
            .get_template("chat")
            .map_err(|e| Error::Template(e.to_string()))?;
        tmpl.render(context! {
            messages => vec![context!{ role => "user", content => user }],
            add_generation_prompt => true,
            bos_token => &self.bos_token,
            eos_token => &self.eos_token,
        })
        .map_err(|e| Error::Template(e.to_string()))
    }

    /// The template source.
    pub fn source(&self) -> &str {
        &self.source
    }
}
