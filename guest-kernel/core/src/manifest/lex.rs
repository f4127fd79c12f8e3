//! The manifest's lexer: the TOML subset's tokens, read straight out of the
//! input so strings are borrowed slices.

use super::{MAX_CAPS, Reason};

/// A value on the right of `=`. (No heap to box the array into; a value
/// lives only on the parser's stack for one line.)
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug)]
pub enum Value<'a> {
    Str(&'a str),
    Int(u64),
    Bool(bool),
    Array(StrArray<'a>),
}

impl<'a> Value<'a> {
    pub fn string(self) -> Result<&'a str, Reason> {
        match self {
            Value::Str(s) => Ok(s),
            _ => Err(Reason::WrongType),
        }
    }

    pub fn integer(self) -> Result<u64, Reason> {
        match self {
            Value::Int(v) => Ok(v),
            _ => Err(Reason::WrongType),
        }
    }

    pub fn boolean(self) -> Result<bool, Reason> {
        match self {
            Value::Bool(b) => Ok(b),
            _ => Err(Reason::WrongType),
        }
    }

    pub fn array(self) -> Result<StrArray<'a>, Reason> {
        match self {
            Value::Array(a) => Ok(a),
            _ => Err(Reason::WrongType),
        }
    }
}

/// An array of strings, each with the line it is on.
#[derive(Clone, Copy, Debug)]
pub struct StrArray<'a> {
    pub items: [(&'a str, u32); MAX_CAPS],
    pub len: usize,
}

/// A cursor over the manifest text that counts lines.
#[derive(Debug)]
pub struct Lexer<'a> {
    text: &'a str,
    pos: usize,
    line: u32,
}

impl<'a> Lexer<'a> {
    pub fn new(text: &'a str) -> Self {
        Lexer {
            text,
            pos: 0,
            line: 1,
        }
    }

    /// The 1-based line the cursor is on.
    pub fn line(&self) -> u32 {
        self.line
    }

    fn rest(&self) -> &'a str {
        self.text.get(self.pos..).unwrap_or("")
    }

    /// The next character, if any.
    pub fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) {
        if let Some(c) = self.peek() {
            self.pos = self.pos.saturating_add(c.len_utf8());
            if c == '\n' {
                self.line = self.line.saturating_add(1);
            }
        }
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn skip_spaces(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.bump();
        }
    }

    fn skip_comment(&mut self) {
        if self.peek() == Some('#') {
            while !matches!(self.peek(), None | Some('\n')) {
                self.bump();
            }
        }
    }

    /// Skips whitespace, newlines and comments.
    pub fn skip_blank(&mut self) {
        loop {
            match self.peek() {
                Some(' ' | '\t' | '\r' | '\n') => self.bump(),
                Some('#') => self.skip_comment(),
                _ => return,
            }
        }
    }

    /// Spaces, an optional comment, then a newline or the end.
    pub fn end_of_line(&mut self) -> Result<(), Reason> {
        self.skip_spaces();
        self.skip_comment();
        self.eat('\r');
        match self.peek() {
            None => Ok(()),
            Some('\n') => {
                self.bump();
                Ok(())
            }
            Some(_) => Err(Reason::Unexpected),
        }
    }

    fn word(&mut self) -> &'a str {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            self.bump();
        }
        self.text.get(start..self.pos).unwrap_or("")
    }

    /// `[[ name ]]` up to the end of its line; returns the name.
    pub fn header(&mut self) -> Result<&'a str, Reason> {
        if !(self.eat('[') && self.eat('[')) {
            return Err(Reason::UnknownTable);
        }
        self.skip_spaces();
        let name = self.word();
        self.skip_spaces();
        if !(self.eat(']') && self.eat(']')) {
            return Err(Reason::Unexpected);
        }
        self.end_of_line()?;
        Ok(name)
    }

    /// A bare key and the `=` after it.
    pub fn key(&mut self) -> Result<&'a str, Reason> {
        let key = self.word();
        if key.is_empty() {
            return Err(Reason::Unexpected);
        }
        self.skip_spaces();
        if !self.eat('=') {
            return Err(Reason::Unexpected);
        }
        self.skip_spaces();
        Ok(key)
    }

    /// One value.
    pub fn value(&mut self) -> Result<Value<'a>, Reason> {
        match self.peek() {
            Some('"') => self.string().map(Value::Str),
            Some('[') => self.array().map(Value::Array),
            Some('0'..='9') => self.integer().map(Value::Int),
            Some('+' | '-') => Err(Reason::BadNumber),
            Some(_) => match self.word() {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                _ => Err(Reason::Unexpected),
            },
            None => Err(Reason::Unexpected),
        }
    }

    fn string(&mut self) -> Result<&'a str, Reason> {
        self.bump(); // the opening quote
        let start = self.pos;
        loop {
            match self.peek() {
                None | Some('\n') => return Err(Reason::UnterminatedString),
                Some('"') => break,
                Some('\\') => return Err(Reason::EscapeInString),
                Some(c) if c.is_control() && c != '\t' => return Err(Reason::ControlInString),
                Some(_) => self.bump(),
            }
        }
        let s = self.text.get(start..self.pos).unwrap_or("");
        self.bump(); // the closing quote
        Ok(s)
    }

    fn integer(&mut self) -> Result<u64, Reason> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            self.bump();
        }
        let token = self.text.get(start..self.pos).unwrap_or("");
        parse_uint(token).ok_or(Reason::BadNumber)
    }

    fn array(&mut self) -> Result<StrArray<'a>, Reason> {
        self.bump(); // [
        let mut out = StrArray {
            items: [("", 0); MAX_CAPS],
            len: 0,
        };
        loop {
            self.skip_blank();
            if self.eat(']') {
                return Ok(out);
            }
            if self.peek() != Some('"') {
                return Err(Reason::Unexpected);
            }
            let line = self.line;
            let s = self.string()?;
            let slot = out.items.get_mut(out.len).ok_or(Reason::TooManyCaps)?;
            *slot = (s, line);
            out.len = out.len.saturating_add(1);
            self.skip_blank();
            if self.eat(']') {
                return Ok(out);
            }
            if !self.eat(',') {
                return Err(Reason::Unexpected);
            }
        }
    }
}

/// An unsigned integer: decimal or `0x` hex, `_` allowed between digits.
pub fn parse_uint(token: &str) -> Option<u64> {
    let (digits, radix) = match token.strip_prefix("0x") {
        Some(hex) => (hex, 16),
        None => (token, 10),
    };
    if digits.is_empty() || digits.starts_with('_') || digits.ends_with('_') {
        return None;
    }
    let mut v: u64 = 0;
    for c in digits.chars().filter(|&c| c != '_') {
        let d = c.to_digit(radix)?;
        v = v.checked_mul(u64::from(radix))?.checked_add(u64::from(d))?;
    }
    Some(v)
}
