import { greeting } from './greeting.js';
import './style.css';

const show = (text) => {
  document.querySelector('#greeting').textContent = text;
};
show(greeting);

// Same origin as the page: frontgate routes /api/ to the API and checks the call.
fetch('/api/hello')
  .then((r) => r.json())
  .then((body) => {
    document.querySelector('#api').textContent = body.message;
  })
  .catch((e) => {
    document.querySelector('#api').textContent = `error: ${e}`;
  });

// Swap in an edited greeting.js without reloading the page.
if (import.meta.hot) {
  import.meta.hot.accept('./greeting.js', (mod) => mod && show(mod.greeting));
}
