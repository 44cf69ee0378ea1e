import type { DeliveryItem } from "./items.ts";
import { Deliveries } from "./tables.ts";

/** Claims a webhook delivery for a job; false if it was claimed before (a redelivery). */
export const claimDelivery = (delivery: DeliveryItem): Promise<boolean> =>
  Deliveries.put(delivery, { expression: "attribute_not_exists(deliveryId)" });

export const getDelivery = (deliveryId: string): Promise<DeliveryItem | undefined> => Deliveries.get({ deliveryId });
