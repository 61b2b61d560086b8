// A 1-5 satisfaction rating as a radio group (the ticket page and the e-mail link's page).

export const RATING_LABELS: Record<number, string> = {
  1: "1: Poor",
  2: "2: Fair",
  3: "3: Good",
  4: "4: Very good",
  5: "5: Great",
};

export function RatingPicker({
  value,
  onChange,
  name,
  labelledBy,
}: {
  value: number | null;
  onChange: (rating: number) => void;
  name: string;
  labelledBy: string;
}) {
  return (
    <div role="radiogroup" aria-labelledby={labelledBy} className="segmented rating-picker">
      {[1, 2, 3, 4, 5].map((rating) => (
        <label key={rating} className={value === rating ? "selected" : ""}>
          <input
            type="radio"
            name={name}
            value={rating}
            checked={value === rating}
            onChange={() => onChange(rating)}
          />
          {RATING_LABELS[rating]}
        </label>
      ))}
    </div>
  );
}
