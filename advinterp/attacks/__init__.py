"""Adversarial attacks in pixel space [0, 1]: IFGSM/PGD, localized BIM, FGSM, C&W, JSMA, attack-to-explain."""
