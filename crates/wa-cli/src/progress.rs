//! A progress bar on stderr for long work, drawn only on a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use wa_migrate::{Progress, Stage};

/// Work smaller than this many keys finishes before a bar would be useful.
const MIN_KEYS: u64 = 2_000;

/// The bar (hidden until a stage is large enough; indicatif draws nothing when stderr is not
/// a terminal).
pub struct Bar {
    bar: ProgressBar,
}

impl Bar {
    /// A hidden bar; `json` output keeps it hidden for good.
    pub fn new() -> Self {
        let bar = ProgressBar::hidden();
        bar.set_style(
            ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} keys ({eta})")
                .expect("valid template")
                .progress_chars("=> "),
        );
        Self { bar }
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for Bar {
    fn stage(&self, stage: Stage, total: u64) {
        if total >= MIN_KEYS && self.bar.is_hidden() {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
        self.bar.set_message(stage.to_string());
        self.bar.set_length(total);
        self.bar.set_position(0);
    }

    fn advance(&self, done: u64) {
        self.bar.inc(done);
    }
}
