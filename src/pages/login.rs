//! Sign-in page.

use yew::prelude::*;

/// `/login`.
#[function_component]
pub fn LoginPage() -> Html {
    html! {
        <section class="card card-narrow">
            <h1>{ "Sign in" }</h1>
            <form>
                <div class="field">
                    <label for="username">{ "Username" }</label>
                    <input id="username" name="username" autocomplete="username" />
                </div>
                <div class="field">
                    <label for="password">{ "Password" }</label>
                    <input id="password" name="password" type="password" autocomplete="current-password" />
                </div>
                <button class="btn btn-primary" type="submit">{ "Login" }</button>
            </form>
        </section>
    }
}
