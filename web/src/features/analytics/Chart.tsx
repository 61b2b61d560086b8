// Chart.js (pinned in package.json; ADR 0045) drawn on a canvas, with only the parts the
// dashboard uses registered (bars, plain, stacked or horizontal, on category and linear
// scales), so the lazy
// chunk carries no more of the library than it draws. The canvas is an image to assistive
// technology; the same numbers are in the table beside it (ChartCard).

import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  Tooltip,
  type ChartData,
  type ChartOptions,
} from "chart.js";
import { useEffect, useRef } from "react";

Chart.register(BarController, BarElement, CategoryScale, Legend, LinearScale, Tooltip);

// Colour-blind safe (Okabe-Ito), one per series, in order.
export const PALETTE = [
  "#0072B2",
  "#E69F00",
  "#009E73",
  "#CC79A7",
  "#56B4E9",
  "#D55E00",
  "#F0E442",
  "#000000",
];

/** A bar chart; ``options`` must be stable (a module constant): a change redraws it anew. */
export function BarChart({
  data,
  options,
  label,
}: {
  data: ChartData<"bar">;
  options?: ChartOptions<"bar">;
  label: string;
}) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const chart = useRef<Chart<"bar"> | null>(null);
  const latest = useRef(data);
  useEffect(() => {
    latest.current = data;
  });

  useEffect(() => {
    const context = canvas.current?.getContext("2d");
    if (!context) return; // no canvas (jsdom): the table carries the numbers
    chart.current = new Chart(context, {
      type: "bar",
      data: latest.current,
      options: { responsive: true, maintainAspectRatio: false, animation: false, ...options },
    });
    return () => {
      chart.current?.destroy();
      chart.current = null;
    };
  }, [options]);

  useEffect(() => {
    const current = chart.current;
    if (!current) return;
    current.data = data;
    current.update("none");
  }, [data]);

  return (
    <div className="chart-canvas">
      <canvas ref={canvas} role="img" aria-label={label} />
    </div>
  );
}
