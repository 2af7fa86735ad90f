// A shared "now" for relative times ("12 s ago"), ticking once a second while
// something reads it.
import { createSubscriber } from 'svelte/reactivity';

class Clock {
  #now = Date.now();
  #subscribe = createSubscriber((update) => {
    this.#now = Date.now();
    const timer = setInterval(() => {
      this.#now = Date.now();
      update();
    }, 1000);
    return () => clearInterval(timer);
  });

  get now(): number {
    if (!$effect.tracking()) return Date.now();
    this.#subscribe();
    return this.#now;
  }
}

export const clock = new Clock();
