// Kiosk mode (`?kiosk=1`): bigger type and targets, and a sign-out after `idleSeconds` of
// inactivity, with a visible countdown in the last seconds that any touch or key cancels.
import { t } from "/common/i18n.js";

/** True when the page was opened as a kiosk. */
export function isKiosk() {
  return new URLSearchParams(location.search).get("kiosk") === "1";
}

/** How many seconds before the sign-out the warning shows. */
export function warningSeconds(idleSeconds) {
  return Math.max(5, Math.min(30, Math.floor(idleSeconds / 3)));
}

/** Watches for inactivity while `active()` is true; calls `onTimeout()` after `idleSeconds`
 *  without a touch, click, key or scroll. */
export function startIdleWatch(idleSeconds, active, onTimeout) {
  const box = document.getElementById("kiosk-warning");
  const text = document.getElementById("kiosk-warning-text");
  const button = document.getElementById("kiosk-continue");
  const warnAt = warningSeconds(idleSeconds);
  let last = Date.now();
  let warned = false;
  let returnFocus = null;

  const hide = () => {
    if (!warned) return;
    warned = false;
    box.hidden = true;
    if (returnFocus && document.contains(returnFocus)) returnFocus.focus();
  };
  const activity = () => {
    last = Date.now();
    hide();
  };
  for (const kind of ["pointerdown", "keydown", "input", "wheel", "touchstart"]) {
    document.addEventListener(kind, activity, { capture: true, passive: true });
  }
  button.addEventListener("click", activity);

  setInterval(() => {
    if (!active()) {
      last = Date.now();
      hide();
      return;
    }
    const left = idleSeconds - Math.floor((Date.now() - last) / 1000);
    if (left <= 0) {
      hide();
      last = Date.now();
      onTimeout();
      return;
    }
    if (left <= warnAt) {
      text.textContent = t("kiosk.countdown", { seconds: left });
      if (!warned) {
        warned = true;
        returnFocus = document.activeElement;
        box.hidden = false;
        button.focus();
      }
    }
  }, 1000);
}
