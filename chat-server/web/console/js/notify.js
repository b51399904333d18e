// Telling the agent something needs them without stealing focus: a counter in the tab's
// title and a short beep made with WebAudio (no sound file to download).
import { state } from './state.js';
import { t } from './i18n.js';

let audio;

export function updateTitle() {
  const base = t('app.title');
  document.title = state.unseenAssigned ? `(${state.unseenAssigned}) ${base}` : base;
}

/** A conversation was assigned to me. */
export function assigned() {
  state.unseenAssigned += 1;
  updateTitle();
  beep();
}

export function seen() {
  if (!state.unseenAssigned) return;
  state.unseenAssigned = 0;
  updateTitle();
}

export function beep() {
  try {
    audio = audio || new AudioContext();
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.15, audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.2);
    osc.connect(gain).connect(audio.destination);
    osc.start();
    osc.stop(audio.currentTime + 0.2);
  } catch { /* no audio device: the title still says it */ }
}
