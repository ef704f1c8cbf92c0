<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="fr_FR">
<context>
    <name>AboutModel</name>
    <message>
        <source>accuracy</source>
        <translation>exactitude</translation>
    </message>
    <message>
        <source>sensitivity</source>
        <translation>sensibilité</translation>
    </message>
    <message>
        <source>specificity</source>
        <translation>spécificité</translation>
    </message>
    <message>
        <source>ROC AUC</source>
        <translation>AUC ROC</translation>
    </message>
    <message>
        <source>all sites</source>
        <translation>tous les sites</translation>
    </message>
    <message>
        <source>site</source>
        <translation>site</translation>
    </message>
    <message>
        <source>images</source>
        <translation>images</translation>
    </message>
    <message>
        <source>patients (N/P)</source>
        <translation>patients (N/P)</translation>
    </message>
    <message>
        <source>Operating threshold</source>
        <translation>Seuil de décision</translation>
    </message>
    <message>
        <source>%1 (PNEUMONIA at or above)</source>
        <translation>%1 (PNEUMONIE à partir de ce seuil)</translation>
    </message>
    <message>
        <source>Calibration</source>
        <translation>Calibration</translation>
    </message>
    <message>
        <source>temperature %1, fitted on the validation images</source>
        <translation>température %1, ajustée sur les images de validation</translation>
    </message>
    <message>
        <source>Site %1</source>
        <translation>Site %1</translation>
    </message>
    <message>
        <source>threshold %1, temperature %2 (from %3 validation images)</source>
        <translation>seuil %1, température %2 (sur %3 images de validation)</translation>
    </message>
    <message>
        <source>This computer uses</source>
        <translation>Cet ordinateur utilise</translation>
    </message>
    <message>
        <source>the pooled operating point</source>
        <translation>le point de fonctionnement commun</translation>
    </message>
    <message>
        <source>site %1&apos;s operating point</source>
        <translation>le point de fonctionnement du site %1</translation>
    </message>
    <message>
        <source>Created</source>
        <translation>Créé</translation>
    </message>
    <message>
        <source>Installed on this computer</source>
        <translation>Installé sur cet ordinateur</translation>
    </message>
    <message>
        <source>Source</source>
        <translation>Origine</translation>
    </message>
    <message>
        <source>Folder</source>
        <translation>Dossier</translation>
    </message>
    <message>
        <source>Training data</source>
        <translation>Données d&apos;entraînement</translation>
    </message>
    <message>
        <source>Data version (DVC)</source>
        <translation>Version des données (DVC)</translation>
    </message>
    <message>
        <source>Registry</source>
        <translation>Registre</translation>
    </message>
    <message>
        <source>Training run (MLflow)</source>
        <translation>Entraînement (MLflow)</translation>
    </message>
    <message>
        <source>Code version</source>
        <translation>Version du code</translation>
    </message>
    <message>
        <source>Intended use</source>
        <translation>Usage prévu</translation>
    </message>
    <message>
        <source>Measured on the gold sets (95 % confidence intervals)</source>
        <translation>Mesuré sur les ensembles de référence (intervalles de confiance à 95 %)</translation>
    </message>
    <message>
        <source>Threshold and calibration</source>
        <translation>Seuil et calibration</translation>
    </message>
    <message>
        <source>Suitability check</source>
        <translation>Contrôle d&apos;aptitude</translation>
    </message>
    <message>
        <source>Origin</source>
        <translation>Provenance</translation>
    </message>
    <message>
        <source>Model version %1 (%2)</source>
        <translation>Modèle version %1 (%2)</translation>
    </message>
    <message>
        <source>A second opinion on frontal chest X-rays (PA or AP views): NORMAL or PNEUMONIA with a calibrated probability and a heat map of the evidence. For investigational use — not a diagnosis: a radiologist reads every image. Images the model is not fit to judge (other body parts or modalities, lateral views, images unlike its training data) get no result.</source>
        <translation>Un second avis sur les radiographies thoraciques de face (incidences PA ou AP) : NORMAL ou PNEUMONIE avec une probabilité calibrée et une carte de chaleur des indices. À usage expérimental — pas un diagnostic : un radiologue lit chaque image. Les images que le modèle n&apos;est pas apte à juger (autres régions ou modalités, incidences de profil, images différentes de ses données d&apos;entraînement) n&apos;ont pas de résultat.</translation>
    </message>
    <message>
        <source>Gold sets are patients kept out of training at each hospital; a site not listed was not measured, and results there may differ.</source>
        <translation>Les ensembles de référence sont des patients tenus hors de l&apos;entraînement dans chaque hôpital ; un site absent n&apos;a pas été mesuré, et les résultats peuvent y être différents.</translation>
    </message>
    <message>
        <source>Method</source>
        <translation>Méthode</translation>
    </message>
    <message>
        <source>Out-of-distribution threshold</source>
        <translation>Seuil hors distribution</translation>
    </message>
    <message>
        <source>About model version %1</source>
        <translation>À propos du modèle version %1</translation>
    </message>
    <message>
        <source>the folder given with --model-dir (updates are off)</source>
        <translation>le dossier donné par --model-dir (mises à jour désactivées)</translation>
    </message>
    <message>
        <source>installed with the app</source>
        <translation>installé avec l&apos;application</translation>
    </message>
    <message>
        <source>the model feed %1 (signed, verified on download)</source>
        <translation>le flux de modèles %1 (signé, vérifié au téléchargement)</translation>
    </message>
    <message>
        <source>the app&apos;s model store</source>
        <translation>le magasin de modèles de l&apos;application</translation>
    </message>
    <message>
        <source>About this model…</source>
        <translation>À propos de ce modèle…</translation>
    </message>
</context>
<context>
    <name>AuditDialog</name>
    <message>
        <source>Audit log</source>
        <translation>Journal d’audit</translation>
    </message>
    <message>
        <source>Filter by file name or label</source>
        <translation>Filtrer par nom de fichier ou résultat</translation>
    </message>
    <message>
        <source>All results</source>
        <translation>Tous les résultats</translation>
    </message>
    <message>
        <source>Not yet confirmed</source>
        <translation>Non encore confirmés</translation>
    </message>
    <message>
        <source>Confirmed</source>
        <translation>Confirmés</translation>
    </message>
    <message>
        <source>Corrected</source>
        <translation>Corrigés</translation>
    </message>
    <message>
        <source>Confirm NORMAL</source>
        <translation>Confirmer NORMAL</translation>
    </message>
    <message>
        <source>Confirm PNEUMONIA</source>
        <translation>Confirmer PNEUMONIE</translation>
    </message>
    <message>
        <source>Record %1 as your read of the selected results (%2)</source>
        <translation>Enregistrer %1 comme votre interprétation des résultats sélectionnés (%2)</translation>
    </message>
    <message>
        <source>Export CSV…</source>
        <translation>Exporter en CSV…</translation>
    </message>
    <message>
        <source>Export labelled batch…</source>
        <translation>Exporter un lot étiqueté…</translation>
    </message>
    <message>
        <source>Write the confirmed images not sent before, de-identified, as a batch for the hub</source>
        <translation>Écrire les images confirmées pas encore envoyées, anonymisées, en un lot pour le hub</translation>
    </message>
    <message>
        <source>Close</source>
        <translation>Fermer</translation>
    </message>
    <message>
        <source>Your read of the selected results:</source>
        <translation>Votre interprétation des résultats sélectionnés :</translation>
    </message>
    <message>
        <source>Cannot read the audit log: %1</source>
        <translation>Impossible de lire le journal d’audit : %1</translation>
    </message>
    <message>
        <source>Your read could not be recorded: %1</source>
        <translation>Votre interprétation n’a pas pu être enregistrée : %1</translation>
    </message>
    <message>
        <source>Recorded %1 as your read of %2 result(s).</source>
        <translation>%1 enregistré comme votre interprétation de %2 résultat(s).</translation>
    </message>
    <message>
        <source>%1 results, %2 confirmed</source>
        <translation>%1 résultats, %2 confirmés</translation>
    </message>
    <message>
        <source>Exported the audit log to %1</source>
        <translation>Journal d’audit exporté dans %1</translation>
    </message>
    <message>
        <source>Export audit log as CSV</source>
        <translation>Exporter le journal d’audit en CSV</translation>
    </message>
    <message>
        <source>CSV files (*.csv)</source>
        <translation>Fichiers CSV (*.csv)</translation>
    </message>
    <message>
        <source>Export failed</source>
        <translation>Échec de l’exportation</translation>
    </message>
    <message>
        <source>Cannot write %1: %2</source>
        <translation>Impossible d’écrire %1 : %2</translation>
    </message>
    <message>
        <source>Export labelled batch to folder</source>
        <translation>Exporter le lot étiqueté dans un dossier</translation>
    </message>
    <message>
        <source>Nothing to export yet: confirm or correct some results first.</source>
        <translation>Rien à exporter pour l’instant : confirmez ou corrigez d’abord des résultats.</translation>
    </message>
    <message>
        <source>Exporting %1 images…</source>
        <translation>Exportation de %1 images…</translation>
    </message>
    <message>
        <source>Exporting: %1 of %2 images…</source>
        <translation>Exportation : %1 images sur %2…</translation>
    </message>
    <message>
        <source>already sent to the hub as %1 (batch %2): not sent again; tell the ML team so that they correct the label there</source>
        <translation>déjà envoyée au hub comme %1 (lot %2) : pas renvoyée ; prévenez l’équipe ML pour qu’elle y corrige l’étiquette</translation>
    </message>
    <message>
        <source>the file is no longer there</source>
        <translation>le fichier n’existe plus</translation>
    </message>
    <message>
        <source>the file changed since it was analysed</source>
        <translation>le fichier a été modifié depuis son analyse</translation>
    </message>
    <message>
        <source>the DICOM declares burned-in annotation (its pixels may identify the patient)</source>
        <translation>le DICOM déclare des annotations incrustées (ses pixels peuvent identifier le patient)</translation>
    </message>
    <message>
        <source>the file cannot be read or de-identified</source>
        <translation>le fichier ne peut pas être lu ou anonymisé</translation>
    </message>
    <message>
        <source>the exported copy did not match the original&apos;s pixels</source>
        <translation>la copie exportée ne correspond pas aux pixels de l’original</translation>
    </message>
    <message>
        <source>the same image was confirmed NORMAL for one file and PNEUMONIA for another</source>
        <translation>la même image a été confirmée NORMAL pour un fichier et PNEUMONIE pour un autre</translation>
    </message>
    <message>
        <source>the same image as another exported file</source>
        <translation>image identique à un autre fichier exporté</translation>
    </message>
    <message>
        <source>Export failed: %1</source>
        <translation>Échec de l’exportation : %1</translation>
    </message>
    <message>
        <source>Nothing new to export: every confirmed image was already sent to the hub. Nothing was written.</source>
        <translation>Rien de nouveau à exporter : toutes les images confirmées ont déjà été envoyées au hub. Rien n’a été écrit.</translation>
    </message>
    <message>
        <source>Nothing was written: no new confirmed image could be exported.</source>
        <translation>Rien n’a été écrit : aucune nouvelle image confirmée n’a pu être exportée.</translation>
    </message>
    <message>
        <source>Wrote %1 images (NORMAL %2, PNEUMONIA %3) to %4.</source>
        <translation>%1 images écrites (NORMAL %2, PNEUMONIE %3) dans %4.</translation>
    </message>
    <message>
        <source>%1 confirmed images were sent before and were left out.</source>
        <translation>%1 images confirmées déjà envoyées ont été laissées de côté.</translation>
    </message>
    <message>
        <source>Warning: the audit log could not record this export (%1); the next export will send these images again.</source>
        <translation>Attention : le journal d’audit n’a pas pu enregistrer cet export (%1) ; le prochain export renverra ces images.</translation>
    </message>
    <message>
        <source>Skipped %1:</source>
        <translation>%1 ignorée(s) :</translation>
    </message>
    <message>
        <source>…and %1 more (see the log).</source>
        <translation>…et %1 de plus (voir le journal).</translation>
    </message>
</context>
<context>
    <name>AuditModel</name>
    <message>
        <source>Time</source>
        <translation>Date et heure</translation>
    </message>
    <message>
        <source>File</source>
        <translation>Fichier</translation>
    </message>
    <message>
        <source>Model result</source>
        <translation>Résultat du modèle</translation>
    </message>
    <message>
        <source>Probability</source>
        <translation>Probabilité</translation>
    </message>
    <message>
        <source>Threshold</source>
        <translation>Seuil</translation>
    </message>
    <message>
        <source>Model version</source>
        <translation>Version du modèle</translation>
    </message>
    <message>
        <source>Your read</source>
        <translation>Votre interprétation</translation>
    </message>
    <message>
        <source>Read at</source>
        <translation>Interprété le</translation>
    </message>
    <message>
        <source>Views</source>
        <translation>Affichages</translation>
    </message>
    <message>
        <source>SHA-256</source>
        <translation>SHA-256</translation>
    </message>
    <message>
        <source>No result (withheld)</source>
        <translation>Pas de résultat (retenu)</translation>
    </message>
    <message>
        <source>Last shown %1</source>
        <translation>Dernier affichage %1</translation>
    </message>
    <message>
        <source>Sent in batch</source>
        <translation>Envoyée dans le lot</translation>
    </message>
    <message>
        <source>%1 (corrected)</source>
        <translation>%1 (corrigé)</translation>
    </message>
    <message>
        <source>Sent to the hub as %1 on %2</source>
        <translation>Envoyée au hub comme %1 le %2</translation>
    </message>
</context>
<context>
    <name>AuditTools</name>
    <message>
        <source>&amp;Audit log…</source>
        <translation>&amp;Journal d’audit…</translation>
    </message>
    <message>
        <source>Export &amp;labelled batch…</source>
        <translation>Exporter un &amp;lot étiqueté…</translation>
    </message>
</context>
<context>
    <name>FeedbackBox</name>
    <message>
        <source>Your read</source>
        <translation>Votre interprétation</translation>
    </message>
    <message>
        <source>Confirm NORMAL</source>
        <translation>Confirmer NORMAL</translation>
    </message>
    <message>
        <source>Confirm PNEUMONIA</source>
        <translation>Confirmer PNEUMONIE</translation>
    </message>
    <message>
        <source>Record %1 as your read (%2)</source>
        <translation>Enregistrer %1 comme votre lecture (%2)</translation>
    </message>
    <message>
        <source>Your read could not be recorded: %1</source>
        <translation>Votre interprétation n’a pas pu être enregistrée : %1</translation>
    </message>
    <message>
        <source>Open an image to give your read.</source>
        <translation>Ouvrez une image pour donner votre interprétation.</translation>
    </message>
    <message>
        <source>No model result for this image: your read is still recorded.</source>
        <translation>Pas de résultat du modèle pour cette image : votre lecture est tout de même enregistrée.</translation>
    </message>
    <message>
        <source>Recorded: %1 (the model gave no result).</source>
        <translation>Enregistré : %1 (le modèle n&apos;a pas donné de résultat).</translation>
    </message>
    <message>
        <source>Not confirmed yet: the model says %1.</source>
        <translation>Pas encore confirmé : le modèle indique %1.</translation>
    </message>
    <message>
        <source>Recorded: %1, agreeing with the model.</source>
        <translation>Enregistré : %1, en accord avec le modèle.</translation>
    </message>
    <message>
        <source>Recorded: corrected to %1 (the model said %2).</source>
        <translation>Enregistré : corrigé en %1 (le modèle indiquait %2).</translation>
    </message>
    <message>
        <source>&amp;Result</source>
        <translation>&amp;Résultat</translation>
    </message>
</context>
<context>
    <name>Labels</name>
    <message>
        <source>NORMAL</source>
        <translation>NORMAL</translation>
    </message>
    <message>
        <source>PNEUMONIA</source>
        <translation>PNEUMONIE</translation>
    </message>
</context>
<context>
    <name>MainWindow</name>
    <message>
        <source>PneumoScan</source>
        <translation>PneumoScan</translation>
    </message>
    <message>
        <source>Model version %1</source>
        <translation>Version du modèle %1</translation>
    </message>
    <message>
        <source>Open a chest X-ray (PNG, JPEG or DICOM) or drop it here.</source>
        <translation>Ouvrez une radiographie thoracique (PNG, JPEG ou DICOM) ou déposez-la ici.</translation>
    </message>
    <message>
        <source>&amp;Open…</source>
        <translation>&amp;Ouvrir…</translation>
    </message>
    <message>
        <source>Open folder for &amp;triage…</source>
        <translation>Ouvrir un dossier pour le &amp;tri…</translation>
    </message>
    <message>
        <source>&amp;Quit</source>
        <translation>&amp;Quitter</translation>
    </message>
    <message>
        <source>&amp;Next image</source>
        <translation>Image &amp;suivante</translation>
    </message>
    <message>
        <source>&amp;Previous image</source>
        <translation>Image &amp;précédente</translation>
    </message>
    <message>
        <source>Zoom &amp;in</source>
        <translation>Zoom a&amp;vant</translation>
    </message>
    <message>
        <source>Zoom &amp;out</source>
        <translation>Zoom a&amp;rrière</translation>
    </message>
    <message>
        <source>&amp;Fit to window</source>
        <translation>&amp;Ajuster à la fenêtre</translation>
    </message>
    <message>
        <source>&amp;Actual size</source>
        <translation>&amp;Taille réelle</translation>
    </message>
    <message>
        <source>&amp;Heat map</source>
        <translation>&amp;Carte de chaleur</translation>
    </message>
    <message>
        <source>&amp;Reset window/level</source>
        <translation>Réinitialiser le &amp;fenêtrage</translation>
    </message>
    <message>
        <source>&amp;File</source>
        <translation>&amp;Fichier</translation>
    </message>
    <message>
        <source>&amp;View</source>
        <translation>&amp;Affichage</translation>
    </message>
    <message>
        <source>&amp;Model</source>
        <translation>&amp;Modèle</translation>
    </message>
    <message>
        <source>&amp;Tools</source>
        <translation>&amp;Outils</translation>
    </message>
    <message>
        <source>Main</source>
        <translation>Principale</translation>
    </message>
    <message>
        <source>File</source>
        <translation>Fichier</translation>
    </message>
    <message>
        <source>Model result</source>
        <translation>Résultat du modèle</translation>
    </message>
    <message>
        <source>Calibrated probability of pneumonia</source>
        <translation>Probabilité calibrée de pneumonie</translation>
    </message>
    <message>
        <source>Operating threshold</source>
        <translation>Seuil de fonctionnement</translation>
    </message>
    <message>
        <source>Model</source>
        <translation>Modèle</translation>
    </message>
    <message>
        <source>Window / level (drag with the right button; R resets)</source>
        <translation>Fenêtrage (glisser avec le bouton droit ; R pour réinitialiser)</translation>
    </message>
    <message>
        <source>Level: the gray value at the middle of the window</source>
        <translation>Niveau : la valeur de gris au centre de la fenêtre</translation>
    </message>
    <message>
        <source>Width: the range of gray values shown from black to white</source>
        <translation>Largeur : la plage de valeurs de gris affichée du noir au blanc</translation>
    </message>
    <message>
        <source>Level</source>
        <translation>Niveau</translation>
    </message>
    <message>
        <source>Width</source>
        <translation>Largeur</translation>
    </message>
    <message>
        <source>Heat map (H)</source>
        <translation>Carte de chaleur (H)</translation>
    </message>
    <message>
        <source>Opacity</source>
        <translation>Opacité</translation>
    </message>
    <message>
        <source>Heat map opacity</source>
        <translation>Opacité de la carte de chaleur</translation>
    </message>
    <message>
        <source>no evidence (clear)</source>
        <translation>aucun signe (transparent)</translation>
    </message>
    <message>
        <source>For investigational use — not a diagnosis</source>
        <translation>Usage expérimental — ne constitue pas un diagnostic</translation>
    </message>
    <message>
        <source>strong evidence of pneumonia</source>
        <translation>signes marqués de pneumonie</translation>
    </message>
    <message>
        <source>Evidence for pneumonia in each region, on this model&apos;s fixed scale: clear where there is none (or evidence for normal), full colour at +%1 log-odds or more. Not rescaled per image.</source>
        <translation>Signes de pneumonie dans chaque région, sur l&apos;échelle fixe de ce modèle : transparent là où il n&apos;y en a pas (ou en faveur de la normale), couleur pleine à +%1 log-odds ou plus. Pas de remise à l&apos;échelle par image.</translation>
    </message>
    <message>
        <source>No result</source>
        <translation>Pas de résultat</translation>
    </message>
    <message>
        <source>Withheld: %1</source>
        <translation>Retenu : %1</translation>
    </message>
    <message>
        <source>%1, %2 — withheld, not to be relied on</source>
        <translation>%1, %2 — retenu, à ne pas utiliser</translation>
    </message>
    <message>
        <source>%1 (PNEUMONIA at or above)</source>
        <translation>%1 (PNEUMONIE à partir de ce seuil)</translation>
    </message>
    <message>
        <source>%1 (PNEUMONIA at or above; fitted for site %2)</source>
        <translation>%1 (PNEUMONIE à partir de ce seuil ; ajusté pour le site %2)</translation>
    </message>
    <message>
        <source>version %1, %2</source>
        <translation>version %1 du %2</translation>
    </message>
    <message>
        <source>This result is from model version %1 (%2); the model is now version %3 (%4).</source>
        <translation>Ce résultat vient du modèle version %1 (%2) ; le modèle est maintenant la version %3 (%4).</translation>
    </message>
    <message>
        <source>Analyse again with version %1 (%2)</source>
        <translation>Analyser de nouveau avec la version %1 (%2)</translation>
    </message>
    <message>
        <source>Open chest X-ray</source>
        <translation>Ouvrir une radiographie thoracique</translation>
    </message>
    <message>
        <source>Images (*.png *.jpg *.jpeg *.dcm *.dicom);;All files (*)</source>
        <translation>Images (*.png *.jpg *.jpeg *.dcm *.dicom);;Tous les fichiers (*)</translation>
    </message>
    <message>
        <source>Open folder for triage</source>
        <translation>Ouvrir un dossier pour le tri</translation>
    </message>
    <message>
        <source>%1 (%2 / %3) — PneumoScan</source>
        <translation>%1 (%2 / %3) — PneumoScan</translation>
    </message>
    <message>
        <source>Cannot open %1: no such file</source>
        <translation>Impossible d’ouvrir %1 : fichier introuvable</translation>
    </message>
    <message>
        <source>Analysing %1…</source>
        <translation>Analyse de %1…</translation>
    </message>
    <message>
        <source>%1 — %2 × %3 px — %4</source>
        <translation>%1 — %2 × %3 px — %4</translation>
    </message>
    <message>
        <source>no result (withheld)</source>
        <translation>pas de résultat (retenu)</translation>
    </message>
    <message>
        <source>%1 is shown at reduced resolution: %2</source>
        <translation>%1 est affiché en résolution réduite : %2</translation>
    </message>
    <message>
        <source>Cannot open %1: %2</source>
        <translation>Impossible d’ouvrir %1 : %2</translation>
    </message>
    <message>
        <source>Window level %1 %, width %2 %</source>
        <translation>Fenêtrage : niveau %1 %, largeur %2 %</translation>
    </message>
    <message>
        <source>Zoom %1 %</source>
        <translation>Zoom %1 %</translation>
    </message>
</context>
<context>
    <name>Reasons</name>
    <message>
        <source>image data is corrupt or truncated%1</source>
        <translation>les données de l&apos;image sont corrompues ou tronquées%1</translation>
    </message>
    <message>
        <source>not an image file (format not recognised)</source>
        <translation>ce n&apos;est pas un fichier image (format non reconnu)</translation>
    </message>
    <message>
        <source>empty file (0 bytes)</source>
        <translation>fichier vide (0 octet)</translation>
    </message>
    <message>
        <source>cannot read file: permission denied (this user may not read it; ask IT)</source>
        <translation>lecture impossible : permission refusée (cet utilisateur ne peut pas le lire ; contactez l&apos;informatique)</translation>
    </message>
    <message>
        <source>cannot read file: %1 does not exist</source>
        <translation>lecture impossible : %1 n&apos;existe pas</translation>
    </message>
    <message>
        <source>cannot read file: %1 is a folder, not a file</source>
        <translation>lecture impossible : %1 est un dossier, pas un fichier</translation>
    </message>
    <message>
        <source>image too small: %1x%2 (minimum side %3 px)</source>
        <translation>image trop petite : %1×%2 (côté minimal %3 px)</translation>
    </message>
    <message>
        <source>image too large: %1x%2 pixels (limit %3)</source>
        <translation>image trop grande : %1×%2 pixels (limite %3)</translation>
    </message>
    <message>
        <source>unsupported colour mode %1: expected grayscale or RGB</source>
        <translation>mode de couleur %1 non pris en charge : niveaux de gris ou RVB attendus</translation>
    </message>
    <message>
        <source>not a DICOM file (no DICM preamble or readable header)</source>
        <translation>ce n&apos;est pas un fichier DICOM (pas de préambule DICM ni d&apos;en-tête lisible)</translation>
    </message>
    <message>
        <source>DICOM header is corrupt or truncated%1</source>
        <translation>l&apos;en-tête DICOM est corrompu ou tronqué%1</translation>
    </message>
    <message>
        <source>DICOM file holds no image (no Pixel Data)</source>
        <translation>le fichier DICOM ne contient pas d&apos;image (pas de Pixel Data)</translation>
    </message>
    <message>
        <source>DICOM pixel data cannot be decoded%1</source>
        <translation>les pixels DICOM ne peuvent pas être décodés%1</translation>
    </message>
</context>
<context>
    <name>SettingsController</name>
    <message>
        <source>&amp;Settings…</source>
        <translation>&amp;Paramètres…</translation>
    </message>
</context>
<context>
    <name>SettingsDialog</name>
    <message>
        <source>Settings</source>
        <translation>Paramètres</translation>
    </message>
    <message>
        <source>e.g. https://hub.example.org/feed — empty: never check</source>
        <translation>ex. https://hub.example.org/feed — vide : jamais de vérification</translation>
    </message>
    <message>
        <source> h</source>
        <translation> h</translation>
    </message>
    <message>
        <source>Only at start</source>
        <translation>Au démarrage seulement</translation>
    </message>
    <message>
        <source>Full precision (fp32)</source>
        <translation>Pleine précision (fp32)</translation>
    </message>
    <message>
        <source>Compact, faster (int8)</source>
        <translation>Compact, plus rapide (int8)</translation>
    </message>
    <message>
        <source>Automatic (system language)</source>
        <translation>Automatique (langue du système)</translation>
    </message>
    <message>
        <source>English</source>
        <comment>language name, in English</comment>
        <translation>English</translation>
    </message>
    <message>
        <source>Français</source>
        <comment>language name, in French</comment>
        <translation>Français</translation>
    </message>
    <message>
        <source>Also show results withheld as unsuitable (marked, for experts)</source>
        <translation>Afficher aussi les résultats retenus comme inadaptés (signalés, pour experts)</translation>
    </message>
    <message>
        <source>When the model is not fit to judge an image (not a frontal chest X-ray, or unlike the images it was trained on), no result is shown. With this on, the withheld result is shown as well, clearly marked as not to be relied on.</source>
        <translation>Quand le modèle n&apos;est pas apte à juger une image (pas une radiographie thoracique de face, ou différente des images de son entraînement), aucun résultat n&apos;est affiché. Avec cette option, le résultat retenu est aussi affiché, clairement signalé comme à ne pas utiliser.</translation>
    </message>
    <message>
        <source>Model &amp;feed URL:</source>
        <translation>Adresse du &amp;flux de modèles :</translation>
    </message>
    <message>
        <source>&amp;Check for updates every:</source>
        <translation>&amp;Vérifier les mises à jour toutes les :</translation>
    </message>
    <message>
        <source>Model &amp;variant:</source>
        <translation>Variante du &amp;modèle :</translation>
    </message>
    <message>
        <source>&amp;Language:</source>
        <translation>&amp;Langue :</translation>
    </message>
    <message>
        <source>Withheld results:</source>
        <translation>Résultats retenus :</translation>
    </message>
    <message>
        <source>Set by your administrator</source>
        <translation>Défini par votre administrateur</translation>
    </message>
    <message>
        <source>A new model variant is used from the next image on. A new language is shown the next time PneumoScan starts.</source>
        <translation>Une nouvelle variante du modèle s’applique dès l’image suivante. Une nouvelle langue s’affiche au prochain démarrage de PneumoScan.</translation>
    </message>
    <message>
        <source>Administrator settings: %1</source>
        <translation>Paramètres de l’administrateur : %1</translation>
    </message>
    <message>
        <source>No administrator settings on this computer.</source>
        <translation>Aucun paramètre d’administrateur sur cet ordinateur.</translation>
    </message>
    <message>
        <source>Your settings are saved in %1</source>
        <translation>Vos paramètres sont enregistrés dans %1</translation>
    </message>
    <message>
        <source>Ignored: %1</source>
        <translation>Ignoré : %1</translation>
    </message>
    <message>
        <source>The model feed URL must be a web address starting with http:// or https://, such as https://hub.example.org/feed.</source>
        <translation>L’adresse du flux de modèles doit être une adresse web commençant par http:// ou https://, par exemple https://hub.example.org/feed.</translation>
    </message>
    <message>
        <source>The settings were not saved: %1</source>
        <translation>Les paramètres n’ont pas été enregistrés : %1</translation>
    </message>
    <message>
        <source>The settings were not saved: cannot write %1 (%2)</source>
        <translation>Les paramètres n’ont pas été enregistrés : impossible d’écrire %1 (%2)</translation>
    </message>
</context>
<context>
    <name>Suitability</name>
    <message>
        <source>unlike the images this model was trained on</source>
        <translation>différente des images sur lesquelles ce modèle a été entraîné</translation>
    </message>
</context>
<context>
    <name>TriageDialog</name>
    <message>
        <source>Batch triage — %1</source>
        <translation>Tri par lot — %1</translation>
    </message>
    <message>
        <source>Folder: %1</source>
        <translation>Dossier : %1</translation>
    </message>
    <message>
        <source>%v of %m</source>
        <translation>%v sur %m</translation>
    </message>
    <message>
        <source>For investigational use — not a diagnosis</source>
        <translation>Usage expérimental — ne constitue pas un diagnostic</translation>
    </message>
    <message>
        <source>Export CSV…</source>
        <translation>Exporter en CSV…</translation>
    </message>
    <message>
        <source>Cancel</source>
        <translation>Annuler</translation>
    </message>
    <message>
        <source>Close</source>
        <translation>Fermer</translation>
    </message>
    <message>
        <source>Looking for images…</source>
        <translation>Recherche des images…</translation>
    </message>
    <message>
        <source>Cancelling…</source>
        <translation>Annulation…</translation>
    </message>
    <message>
        <source>%1 of %2 analysed</source>
        <translation>%1 sur %2 analysées</translation>
    </message>
    <message>
        <source>Cancelled: %1 of %2 analysed</source>
        <translation>Annulé : %1 sur %2 analysées</translation>
    </message>
    <message>
        <source>No PNG, JPEG or DICOM images in this folder</source>
        <translation>Aucune image PNG, JPEG ou DICOM dans ce dossier</translation>
    </message>
    <message>
        <source>Done: %1 images</source>
        <translation>Terminé : %1 images</translation>
    </message>
    <message>
        <source>, %1 could not be read</source>
        <translation>, %1 illisible(s)</translation>
    </message>
    <message>
        <source>Export triage as CSV</source>
        <translation>Exporter le tri en CSV</translation>
    </message>
    <message>
        <source>CSV files (*.csv)</source>
        <translation>Fichiers CSV (*.csv)</translation>
    </message>
    <message>
        <source>Export failed</source>
        <translation>Échec de l’exportation</translation>
    </message>
    <message>
        <source>Cannot write %1: %2</source>
        <translation>Impossible d’écrire %1 : %2</translation>
    </message>
    <message>
        <source>Exported to %1</source>
        <translation>Exporté dans %1</translation>
    </message>
</context>
<context>
    <name>TriageModel</name>
    <message>
        <source>File</source>
        <translation>Fichier</translation>
    </message>
    <message>
        <source>Result</source>
        <translation>Résultat</translation>
    </message>
    <message>
        <source>Probability of pneumonia</source>
        <translation>Probabilité de pneumonie</translation>
    </message>
    <message>
        <source>Status</source>
        <translation>État</translation>
    </message>
    <message>
        <source>SHA-256</source>
        <translation>SHA-256</translation>
    </message>
    <message>
        <source>Withheld: %1</source>
        <translation>Retenu : %1</translation>
    </message>
    <message>
        <source>Done</source>
        <translation>Terminé</translation>
    </message>
    <message>
        <source>No result</source>
        <translation>Pas de résultat</translation>
    </message>
    <message>
        <source>Error: %1</source>
        <translation>Erreur : %1</translation>
    </message>
</context>
<context>
    <name>UpdateController</name>
    <message>
        <source>Check for updates now</source>
        <translation>Rechercher des mises à jour maintenant</translation>
    </message>
    <message>
        <source>Roll back to previous model</source>
        <translation>Revenir au modèle précédent</translation>
    </message>
    <message>
        <source>Checking for model updates…</source>
        <translation>Recherche de mises à jour du modèle…</translation>
    </message>
    <message>
        <source>Model version %1 — now %2</source>
        <translation>Modèle version %1 — désormais %2</translation>
    </message>
    <message>
        <source>The model file for this variant came from the feed and passed its checks.</source>
        <translation>Le fichier du modèle pour cette variante vient du flux et a passé ses contrôles.</translation>
    </message>
    <message>
        <source>Updated to model version %1</source>
        <translation>Modèle mis à jour : version %1</translation>
    </message>
    <message>
        <source>Model version %1 from the feed passed its signature, hash and reference checks and replaces version %2.</source>
        <translation>La version %1 du modèle, reçue du flux, a passé les contrôles de signature, d’empreinte et de référence et remplace la version %2.</translation>
    </message>
    <message>
        <source>Switched to model version %1 (was %2); the next analysis uses it.</source>
        <translation>Passage à la version %1 du modèle (auparavant %2) ; elle sera utilisée dès la prochaine analyse.</translation>
    </message>
    <message>
        <source>Model version %1 — version %2 rolled back</source>
        <translation>Modèle version %1 — version %2 annulée</translation>
    </message>
    <message>
        <source>The feed&apos;s model is version %2, which was rolled back on this computer, so the app keeps version %1. Model › Allow version %2 again takes it back.</source>
        <translation>Le modèle du flux est la version %2, annulée sur cet ordinateur : l&apos;application garde la version %1. Modèle › Autoriser de nouveau la version %2 la reprend.</translation>
    </message>
    <message>
        <source>Model version %1 — up to date</source>
        <translation>Version du modèle %1 — à jour</translation>
    </message>
    <message>
        <source>Offline — using model version %1</source>
        <translation>Hors ligne — version du modèle %1 utilisée</translation>
    </message>
    <message>
        <source>The model feed cannot be reached; the app carries on with the model it has. %1</source>
        <translation>Le flux de modèles est injoignable ; l’application continue avec le modèle dont elle dispose. %1</translation>
    </message>
    <message>
        <source>Update refused — using model version %1</source>
        <translation>Mise à jour refusée — version du modèle %1 utilisée</translation>
    </message>
    <message>
        <source>The update from the model feed was refused and nothing was installed: %1</source>
        <translation>La mise à jour reçue du flux de modèles a été refusée et rien n’a été installé : %1</translation>
    </message>
    <message>
        <source>Model version %1 — updates off</source>
        <translation>Version du modèle %1 — mises à jour désactivées</translation>
    </message>
    <message>
        <source>Automatic model updates are off: %1</source>
        <translation>Les mises à jour automatiques du modèle sont désactivées : %1</translation>
    </message>
    <message>
        <source>Switching back to model version %1…</source>
        <translation>Retour au modèle version %1…</translation>
    </message>
    <message>
        <source>Rolling back to the previous model…</source>
        <translation>Retour au modèle précédent…</translation>
    </message>
    <message>
        <source>Rolled back to model version %1</source>
        <translation>Retour à la version %1 du modèle</translation>
    </message>
    <message>
        <source>Version %1 will not be installed again; a newer version from the feed will.</source>
        <translation>La version %1 ne sera plus installée ; une version plus récente du flux le sera.</translation>
    </message>
    <message>
        <source>Rolled back to model version %1; the next analysis uses it.</source>
        <translation>Retour à la version %1 du modèle ; elle sera utilisée dès la prochaine analyse.</translation>
    </message>
    <message>
        <source>Rollback failed — using model version %1</source>
        <translation>Échec du retour au modèle précédent — version du modèle %1 utilisée</translation>
    </message>
    <message>
        <source>Model version %1 (%2) in use from the next analysis.</source>
        <translation>Modèle version %1 (%2) utilisé dès la prochaine analyse.</translation>
    </message>
    <message>
        <source>Model reload failed — using model version %1</source>
        <translation>Échec du rechargement du modèle — modèle version %1 utilisé</translation>
    </message>
    <message>
        <source>Allow version %1 again</source>
        <translation>Autoriser de nouveau la version %1</translation>
    </message>
</context>
<context>
    <name>app</name>
    <message>
        <source>Unexpected error</source>
        <translation>Erreur inattendue</translation>
    </message>
    <message>
        <source>PneumoScan hit an unexpected error and carries on; it was written to the log.

%1</source>
        <translation>PneumoScan a rencontré une erreur inattendue et continue de fonctionner ; elle a été consignée dans le journal.

%1</translation>
    </message>
    <message>
        <source>Cannot switch the model to %1: %2</source>
        <translation>Impossible de passer le modèle en %1 : %2</translation>
    </message>
    <message>
        <source>This model folder has no %1 file: the model stays %2.</source>
        <translation>Ce dossier de modèle n&apos;a pas de fichier %1 : le modèle reste %2.</translation>
    </message>
    <message>
        <source>Model version %3 (%1) in use from the next analysis.</source>
        <translation>Modèle version %3 (%1) utilisé dès la prochaine analyse.</translation>
    </message>
    <message>
        <source>Audit log damaged</source>
        <translation>Journal d’audit endommagé</translation>
    </message>
    <message>
        <source>Configuration problem: %1</source>
        <translation>Problème de configuration : %1</translation>
    </message>
</context>
</TS>
