//! Entry point of the browser app: only mounts it.

fn main() {
    yew::Renderer::<yew_session::app::App>::new().render();
}
