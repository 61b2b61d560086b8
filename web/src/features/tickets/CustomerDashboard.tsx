import { useNavigate } from "react-router";
import { CreateTicketForm } from "./CreateTicketForm";
import { TicketListSection } from "./TicketListSection";

export function CustomerDashboard() {
  const navigate = useNavigate();
  return (
    <div className="dashboard two-columns">
      <CreateTicketForm onCreated={(r) => void navigate(`/tickets/${r.id}`)} />
      <TicketListSection />
    </div>
  );
}
