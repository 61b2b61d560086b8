// The page a resolution e-mail's rating link opens (/rate?token=...&rating=N): no sign-in,
// the signed token is the credential (ADR 0047). The rating is posted by this page, not by
// the link's GET, so a mail scanner that fetches links records nothing; a second visit
// records nothing new.

import { useEffect, useRef, useState, type FormEvent } from "react";
import { fetchRatingLink, rateByLink } from "../../api/satisfaction";
import { Loading } from "../../components/States";
import { errorMessage } from "../../lib/api";
import type { RatingLink } from "../../lib/types";
import { RATING_LABELS, RatingPicker } from "../../components/RatingPicker";

export function RatePage() {
  const params = new URLSearchParams(window.location.search);
  const token = params.get("token") ?? "";
  const asked = Number(params.get("rating"));
  const [about, setAbout] = useState<RatingLink | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [rating, setRating] = useState<number | null>(asked >= 1 && asked <= 5 ? asked : null);
  const [saved, setSaved] = useState<number | null>(null);
  const [comment, setComment] = useState("");
  const [commentSaved, setCommentSaved] = useState(false);
  const started = useRef(false);
  const heading = useRef<HTMLHeadingElement>(null);

  useEffect(() => {
    if (started.current) return;
    started.current = true;
    void (async () => {
      try {
        const link = await fetchRatingLink(token);
        setAbout(link);
        if (link.rateable && rating !== null) {
          await rateByLink({ token, rating });
          setSaved(rating);
        } else if (link.rating !== null) {
          setRating(link.rating);
        }
      } catch (e) {
        setError(errorMessage(e));
      }
    })();
  }, [token, rating]);

  useEffect(() => heading.current?.focus(), [about, error, saved]);

  async function onSubmit(e: FormEvent) {
    e.preventDefault();
    if (rating === null) return;
    try {
      await rateByLink({ token, rating, comment });
      setSaved(rating);
      setCommentSaved(Boolean(comment.trim()));
    } catch (err) {
      setError(errorMessage(err));
    }
  }

  return (
    <main id="main" className="rate-page card">
      {error ? (
        <>
          <h1 ref={heading} tabIndex={-1}>
            This link does not work
          </h1>
          <p role="alert">{error}</p>
        </>
      ) : !about ? (
        <Loading label="Loading…" />
      ) : !about.rateable ? (
        <>
          <h1 ref={heading} tabIndex={-1}>
            Not ready for a rating
          </h1>
          <p>The ticket “{about.subject}” is not resolved yet.</p>
        </>
      ) : (
        <>
          <h1 ref={heading} tabIndex={-1}>
            {saved !== null ? "Thank you for your rating" : "How did we do?"}
          </h1>
          <p>
            Ticket: <strong>{about.subject}</strong>
          </p>
          {saved !== null && (
            <p role="status" data-testid="rate-saved">
              You rated it {RATING_LABELS[saved]}.{commentSaved && " Your comment was saved."}
            </p>
          )}
          <form onSubmit={(e) => void onSubmit(e)} aria-labelledby="rate-question">
            <p id="rate-question">
              {saved !== null ? "Change your rating or add a comment:" : "Choose a rating:"}
            </p>
            <RatingPicker
              value={rating}
              onChange={setRating}
              name="rate"
              labelledBy="rate-question"
            />
            <label htmlFor="rate-comment">Comment (optional)</label>
            <textarea
              id="rate-comment"
              value={comment}
              maxLength={2000}
              rows={3}
              onChange={(e) => setComment(e.target.value)}
            />
            <button type="submit" disabled={rating === null}>
              Send
            </button>
          </form>
        </>
      )}
    </main>
  );
}
