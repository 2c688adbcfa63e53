// Reads an iCalendar feed on stdin with ical.js (the parser of Mozilla's calendar clients)
// and prints its events as JSON: uid, start and end in UTC ISO form, summary.
import ICAL from "ical.js";

let text = "";
process.stdin.setEncoding("utf8");
for await (const chunk of process.stdin) text += chunk;
const calendar = new ICAL.Component(ICAL.parse(text));
const events = calendar.getAllSubcomponents("vevent").map((component) => {
  const event = new ICAL.Event(component);
  return {
    uid: event.uid,
    start: event.startDate.toJSDate().toISOString(),
    end: event.endDate.toJSDate().toISOString(),
    summary: event.summary,
  };
});
process.stdout.write(JSON.stringify(events));
