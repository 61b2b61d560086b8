// Reply drafts per user and ticket in localStorage: a reload, an ended session or a new
// sign-in never loses what the user was writing. Sending (or emptying the box) clears it.

const PREFIX = "deskstream.draft";

function keyOf(userId: number | string, ticketId: string): string {
  return `${PREFIX}.${userId}.${ticketId}`;
}

export function loadDraft(userId: number | string, ticketId: string): string {
  try {
    return localStorage.getItem(keyOf(userId, ticketId)) ?? "";
  } catch {
    return "";
  }
}

export function saveDraft(userId: number | string, ticketId: string, body: string): void {
  try {
    if (body) localStorage.setItem(keyOf(userId, ticketId), body);
    else localStorage.removeItem(keyOf(userId, ticketId));
  } catch {
    // Storage full or disabled: the draft lives in the page only.
  }
}
