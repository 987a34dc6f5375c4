//! The agent's requests for a person, asked inline: a `permission` is answered y / n /
//! always, each question of a `question` with an option's number (several, comma
//! separated, where it allows more than one) or the person's own words.

use serde_json::{Map, Value, json};

use super::render::summary;

/// A request being asked, one line of the person's at a time.
#[derive(Debug)]
pub struct Asking {
    /// The request's id.
    pub request_id: String,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Permission {
        tool: String,
        input: Value,
    },
    Question {
        questions: Vec<Value>,
        answers: Map<String, Value>,
    },
}

/// What a line of the person's did.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// The request is answered: the body of `POST …/answers`.
    Done(Value),
    /// The line did not answer; ask this again.
    Again(String),
}

impl Asking {
    /// Starts asking the request in `envelope` (a `permission` or `question` event).
    pub fn new(envelope: &Value) -> Option<Asking> {
        let data = &envelope["data"];
        let request_id = data["requestId"].as_str()?.to_owned();
        let kind = match envelope["type"].as_str()? {
            "permission" => Kind::Permission {
                tool: data["tool"].as_str().unwrap_or("a tool").to_owned(),
                input: data["input"].clone(),
            },
            "question" => Kind::Question {
                questions: data["questions"].as_array().cloned().unwrap_or_default(),
                answers: Map::new(),
            },
            _ => return None,
        };
        Some(Asking { request_id, kind })
    }

    /// What to ask now.
    pub fn prompt(&self) -> String {
        match &self.kind {
            Kind::Permission { tool, input } => {
                format!(
                    "? {tool} {} — allow? [y]es / [n]o / [a]lways: ",
                    summary(input)
                )
            }
            Kind::Question { questions, answers } => match questions.get(answers.len()) {
                Some(question) => question_prompt(question),
                None => String::new(),
            },
        }
    }

    /// Takes one line of the person's.
    pub fn take(&mut self, line: &str) -> Step {
        let line = line.trim();
        let request_id = self.request_id.clone();
        match &mut self.kind {
            Kind::Permission { .. } => match line.to_ascii_lowercase().as_str() {
                "y" | "yes" => Step::Done(json!({ "requestId": request_id, "behavior": "allow" })),
                "a" | "always" => Step::Done(
                    json!({ "requestId": request_id, "behavior": "allow", "always": true }),
                ),
                "n" | "no" => Step::Done(json!({ "requestId": request_id, "behavior": "deny" })),
                _ => Step::Again(format!("answer y, n or a: {}", self.prompt())),
            },
            Kind::Question { questions, answers } => {
                let Some(question) = questions.get(answers.len()) else {
                    return Step::Done(
                        json!({ "requestId": request_id, "behavior": "allow", "answers": answers }),
                    );
                };
                let Some(answer) = answer_to(question, line) else {
                    return Step::Again(question_prompt(question));
                };
                let text = question["question"].as_str().unwrap_or_default().to_owned();
                answers.insert(text, Value::String(answer));
                if answers.len() < questions.len() {
                    return Step::Again(self.prompt());
                }
                let answers = Value::Object(std::mem::take(answers));
                Step::Done(
                    json!({ "requestId": request_id, "behavior": "allow", "answers": answers }),
                )
            }
        }
    }
}

/// A question, its options numbered, and how to answer.
fn question_prompt(question: &Value) -> String {
    let mut text = format!(
        "? {}\n",
        question["question"].as_str().unwrap_or("(a question)")
    );
    for (n, option) in options(question).iter().enumerate() {
        let label = option["label"].as_str().unwrap_or_default();
        match option["description"].as_str() {
            Some(description) if !description.is_empty() => {
                text.push_str(&format!("  {}. {label} — {description}\n", n + 1));
            }
            _ => text.push_str(&format!("  {}. {label}\n", n + 1)),
        }
    }
    let how = if question["multiSelect"] == true {
        "numbers, comma separated, or your own words"
    } else {
        "a number or your own words"
    };
    text.push_str(&format!("  answer ({how}): "));
    text
}

fn options(question: &Value) -> &[Value] {
    question["options"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// The answer a line gives: the labels of the options it numbers (joined by `, `), or the
/// line itself; `None` for an empty line or a number out of range.
fn answer_to(question: &Value, line: &str) -> Option<String> {
    if line.is_empty() {
        return None;
    }
    let options = options(question);
    let numbers: Option<Vec<usize>> = line
        .split(',')
        .map(|part| part.trim().parse::<usize>().ok())
        .collect();
    let Some(numbers) = numbers else {
        return Some(line.to_owned());
    };
    if numbers.len() > 1 && question["multiSelect"] != true {
        return None;
    }
    let labels: Option<Vec<&str>> = numbers
        .iter()
        .map(|n| {
            n.checked_sub(1)
                .and_then(|i| options.get(i))
                .and_then(|o| o["label"].as_str())
        })
        .collect();
    labels.map(|labels| labels.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn permission() -> Value {
        json!({ "type": "permission", "seq": 5, "data": { "requestId": "r1", "tool": "Bash",
            "input": { "command": "rm -rf build" } } })
    }

    #[test]
    fn permissions_take_y_n_and_always() {
        let mut asking = Asking::new(&permission()).unwrap();
        assert!(
            asking.prompt().contains("Bash rm -rf build"),
            "{}",
            asking.prompt()
        );
        assert!(matches!(asking.take("maybe"), Step::Again(_)));
        assert_eq!(
            asking.take("Y"),
            Step::Done(json!({ "requestId": "r1", "behavior": "allow" }))
        );
        assert_eq!(
            asking.take("always"),
            Step::Done(json!({ "requestId": "r1", "behavior": "allow", "always": true }))
        );
        assert_eq!(
            asking.take("n"),
            Step::Done(json!({ "requestId": "r1", "behavior": "deny" }))
        );
    }

    #[test]
    fn questions_take_numbers_or_words_one_question_at_a_time() {
        let envelope = json!({ "type": "question", "data": { "requestId": "q1", "questions": [
            { "question": "Color?", "header": "C", "multiSelect": false,
              "options": [{ "label": "Red", "description": "warm" }, { "label": "Blue", "description": "" }] },
            { "question": "Sizes?", "header": "S", "multiSelect": true,
              "options": [{ "label": "S" }, { "label": "M" }, { "label": "L" }] } ] } });
        let mut asking = Asking::new(&envelope).unwrap();
        assert!(
            asking.prompt().contains("1. Red — warm"),
            "{}",
            asking.prompt()
        );
        assert!(matches!(asking.take(""), Step::Again(_)));
        assert!(
            matches!(asking.take("1,2"), Step::Again(_)),
            "one answer only"
        );
        assert!(matches!(asking.take("7"), Step::Again(_)), "no option 7");
        let Step::Again(next) = asking.take("2") else {
            panic!("a second question");
        };
        assert!(next.contains("Sizes?"), "{next}");
        assert_eq!(
            asking.take("1, 3"),
            Step::Done(json!({ "requestId": "q1", "behavior": "allow",
                "answers": { "Color?": "Blue", "Sizes?": "S, L" } }))
        );
        let mut asking = Asking::new(&envelope).unwrap();
        asking.take("something else entirely");
        assert!(matches!(asking.take("2"), Step::Done(_)));
    }
}
